"""Project conftest, read by both pytest (for tests/) and safecompress (for safety_tests/).

The shipped safety tests take their data from ``[tool.safecompress] data`` (the embedded
Fashion-MNIST subset) through the built-in ``data`` fixture, so nothing is defined here for them;
a project of yours would put its ``data`` and ``model_factory`` fixtures in a file like this one.
Tests and CI never touch the network: Hugging Face lookups stay offline and no third-party
safecompress plugin is auto-loaded.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD", "1")
