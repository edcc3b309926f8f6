"""Project fixtures: the architecture state dicts load into (so no --arch is needed)."""

import functools

import safecompress
from safecompress.models import small_cnn


@safecompress.fixture(scope="session")
def model_factory(data):
    """A zero-argument factory with a stable name (the reference-model cache key includes it)."""
    return functools.partial(small_cnn, data.num_classes)
