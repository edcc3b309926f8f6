"""Two sessions in one process see the same project the same way (the benchmark opens one per
seed): no state of the first, and no stale import, leaks into the second."""

from __future__ import annotations


def test_test_module_fixtures_survive_a_second_session(project):
    project.write(
        "safety_tests/test_local.py",
        """
        import safecompress


        @safecompress.fixture
        def local_value():
            return 3


        def test_uses_it(local_value):
            assert local_value == 3


        def test_uses_it_too(local_value):
            assert local_value == 3
        """,
    )
    assert project.run("test", "model.pt", "-q") == 0
    assert project.run("test", "model.pt", "-q") == 0  # was: "fixture 'local_value' not found"


def test_a_second_session_sees_an_edited_conftest(project):
    project.write("safety_tests/test_limit.py", "def test_limit(limit):\n    assert limit == 1\n")
    project.write("safety_tests/conftest.py", "import safecompress\n\n@safecompress.fixture\ndef limit():\n    return 1\n")
    assert project.run("test", "model.pt", "-q") == 0
    project.write("safety_tests/conftest.py", "import safecompress\n\n@safecompress.fixture\ndef limit():\n    return 2\n")
    assert project.run("test", "model.pt", "-q") == 1
