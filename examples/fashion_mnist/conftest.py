"""Project fixtures: where the data comes from and how to build the architecture.

``safecompress test`` and ``safecompress compress`` load this file (it sits beside the
``pyproject.toml`` that has ``[tool.safecompress]``); fixtures here override the built-ins of the
same name. ``train_recipe`` is left to the built-in, which reads ``[tool.safecompress.recipe]``.
"""

from fmnist_project import build_data, data_name
from fmnist_project import model_factory as make_factory

import safecompress


@safecompress.fixture(scope="session")
def data(config, seed):
    """The same draw train_dense.py trained on: ``data``/``data-options`` of pyproject.toml and the seed."""
    return build_data(data_name(config.getoption("data")), config.getoption("data_options", {}), seed)


@safecompress.fixture(scope="session")
def model_factory(data):
    """Builds the architecture to load state dicts into (so no --arch is needed on the command line)."""
    return make_factory(data.num_classes)
