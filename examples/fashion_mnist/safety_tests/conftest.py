"""Fixtures of this project's safety tests: the library suite's (``safecompress.suite.fixtures``).

It gives the in-loop audit set (``loop-members``/``loop-population`` of pyproject.toml), the
session's reference outputs (references built by this project's ``model_factory`` and trained by
its recipe, cached on disk), ``loop_inputs``, ``split_accuracy``, ``dense_baseline`` and the
gate's ``gate_attacks``. A fixture of the same name defined here replaces the suite's.
"""

safecompress_plugins = ["safecompress.suite.fixtures"]
