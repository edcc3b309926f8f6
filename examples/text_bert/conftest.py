"""Project fixtures: the WordNet gloss data and the tiny BERT sized for its vocabulary.

``safecompress test`` and ``safecompress compress`` load this file (it sits beside the
``pyproject.toml`` with ``[tool.safecompress]``). ``train_recipe`` is the built-in one, read from
``[tool.safecompress.recipe]``.
"""

from bert_project import build_data
from bert_project import model_factory as make_factory

import safecompress


@safecompress.fixture(scope="session")
def data(config, seed):
    """The same draw train_dense.py trained on (same settings, same seed, same member-only vocabulary).

    Without WordNet this is a usage error (exit 4), not a skip: a gate that cannot run must not pass.
    """
    return build_data(config.getoption("data"), config.getoption("data_options", {}), seed)


@safecompress.fixture(scope="session")
def model_factory(data):
    """The architecture to load state dicts into: tiny BERT with the data's vocabulary size."""
    return make_factory(data)
