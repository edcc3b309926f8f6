"""Project fixtures: the WordNet data in MiniLM's tokenisation and the pretrained architecture.

``safecompress test`` and ``safecompress compress`` load this file (it sits beside the
``pyproject.toml`` with ``[tool.safecompress]``); ``train_recipe`` is the built-in one.
"""

from minilm_project import build_data
from minilm_project import model_factory as make_factory

import safecompress


@safecompress.fixture(scope="session")
def data(config, seed):
    """The draw train_dense.py fine-tuned on (same options, same seed)."""
    return build_data(config.getoption("data_options", {}), seed)


@safecompress.fixture(scope="session")
def model_factory(data):
    return make_factory(data)
