"""This project's safety-test fixtures: the library suite's (``safecompress.suite.fixtures``).

Define a fixture of the same name here to replace one of them; ``data`` and ``model_factory``
come from the built-ins, which read ``[tool.safecompress]`` in pyproject.toml.
"""

safecompress_plugins = ["safecompress.suite.fixtures"]
