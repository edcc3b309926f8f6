"""A sparse artifact names its architecture; that name must never choose code to run.

Regression for the critical defect of issue 11: ``arch='safecompress.fsutil:os.system'`` with
``arch_kwargs={'command': ...}`` ran a shell command on ``safecompress test evil.safetensors``.
"""

from __future__ import annotations

import pytest

from safecompress.errors import UsageError
from safecompress.modelio import load_model
from safecompress.models import small_cnn
from safecompress.sparse import save_sparse_artifact


def payloads(marker):
    return {
        "shell command": ("safecompress.fsutil:os.system", {"command": f"touch {marker}"}),
        "file write": ("safecompress.fsutil:atomic_write_text", {"path": str(marker), "text": "x"}),
        "outside the package": ("os:system", {"command": f"touch {marker}"}),
        "dotted chain from a registered name": ("safecompress.models:small_cnn.__globals__", {}),
    }


PAYLOAD_NAMES = ("shell command", "file write", "outside the package", "dotted chain from a registered name")


def evil_artifact(project, marker, payload: str):
    arch, kwargs = payloads(marker)[payload]
    path = project.root / "evil.safetensors"
    save_sparse_artifact(small_cnn(), path, arch=arch, arch_kwargs=kwargs)
    return path


@pytest.mark.parametrize("payload", PAYLOAD_NAMES)
@pytest.mark.parametrize(
    "command",
    [
        ("test", "evil.safetensors"),
        ("compress", "evil.safetensors", "--out", "out"),
        ("audit", "evil.safetensors", "--attack", "loss"),
    ],
    ids=["test", "compress", "audit"],
)
def test_a_file_named_architecture_never_runs(bare_project, marker, capsys, one_line_error, payload, command):
    evil_artifact(bare_project, marker, payload)
    assert bare_project.run(*command, "-q") == 4
    line = one_line_error(capsys.readouterr().out)
    assert "not a registered model factory" in line and "--arch" in line
    assert not marker.exists()


@pytest.mark.parametrize("payload", PAYLOAD_NAMES)
def test_load_model_refuses_the_payload(bare_project, marker, payload):
    path = evil_artifact(bare_project, marker, payload)
    with pytest.raises(UsageError, match="not a registered model factory.*pass --arch") as info:
        load_model(path)
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_pytest_bridge_refuses_the_payload(bare_project, marker):
    evil_artifact(bare_project, marker, "shell command")
    result = bare_project.pytest("safety_tests", "--safecompress-model", "evil.safetensors", "-q")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "not a registered model factory" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not marker.exists()


@pytest.mark.parametrize(
    ("arch", "kwargs", "message"),
    [
        ("safecompress.models:small_cnn", {"width": [8]}, "must be a finite JSON scalar"),
        ("safecompress.models:small_cnn", {"command": "touch x"}, "takes no argument 'command'"),
        ("torchvision:resnet18", {"weights": "DEFAULT"}, "takes no argument 'weights'"),
        ("torchvision:no_such_net", {}, "not a registered model factory"),
    ],
)
def test_recorded_arguments_must_fit_the_factory(tmp_path, arch, kwargs, message):
    path = tmp_path / "artifact.safetensors"
    save_sparse_artifact(small_cnn(), path, arch=arch, arch_kwargs=kwargs)
    with pytest.raises(UsageError, match=message):
        load_model(path)


def test_recorded_arguments_cannot_make_us_allocate_a_huge_model(tmp_path):
    """width=100000 would allocate ~700 GB for SmallCNN's second conv: shapes are compared on the
    meta device before anything real is built."""
    path = tmp_path / "artifact.safetensors"
    save_sparse_artifact(small_cnn(), path, arch="safecompress.models:small_cnn", arch_kwargs={"width": 100_000})
    with pytest.raises(UsageError, match="in the artifact, .* in the model"):
        load_model(path)


def test_registered_and_builtin_architectures_load(bare_project, capsys):
    bare_project.write(
        "conftest.py",
        """
        import torch


        def tiny(num_classes: int = 2):
            return torch.nn.Sequential(torch.nn.Linear(4, num_classes))


        def safecompress_register_models(register):
            register("myproject:tiny", tiny)
        """,
    )
    import torch

    save_sparse_artifact(torch.nn.Sequential(torch.nn.Linear(4, 3)), bare_project.root / "mine.safetensors", arch="myproject:tiny", arch_kwargs={"num_classes": 3})
    assert bare_project.run("test", "mine.safetensors", "-q") == 0
    with pytest.raises(UsageError, match="not a registered model factory"):
        load_model(bare_project.root / "mine.safetensors")  # no plugin manager: built-ins only
    save_sparse_artifact(small_cnn(num_classes=4), bare_project.root / "cnn.safetensors", arch="safecompress.models:small_cnn", arch_kwargs={"num_classes": 4})
    assert bare_project.run("test", "cnn.safetensors", "-q") == 0


def test_an_unregistered_name_loads_with_an_explicit_arch(bare_project, capsys, one_line_error):
    save_sparse_artifact(small_cnn(num_classes=5), bare_project.root / "m.safetensors", arch="mymodels:net", arch_kwargs={"num_classes": 5})
    assert bare_project.run("test", "m.safetensors", "-q") == 4
    assert "pass --arch" in one_line_error(capsys.readouterr().out)
    assert bare_project.run("test", "m.safetensors", "-q", "--arch", "safecompress.models:small_cnn") == 0
