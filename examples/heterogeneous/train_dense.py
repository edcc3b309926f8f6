"""Train the dense parent (a SmallCNN on the members, by the project's recipe) → dense/model.safetensors.

Data sizes, seed and recipe come from ``[tool.safecompress]`` in pyproject.toml, the settings
``safecompress compress`` reads, so the parent is trained on exactly the members the tests probe.
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    import torch

    from safecompress.config import find_rootdir
    from safecompress.data import build_dataset
    from safecompress.inference import accuracy
    from safecompress.modelio import save_model
    from safecompress.models import small_cnn
    from safecompress.training import TrainRecipe, fit

    _, settings = find_rootdir(HERE)
    seed = int(settings.get("seed", 0))
    data = build_dataset(settings["data"], seed=seed, **settings.get("data-options", {}))
    torch.manual_seed(seed)
    model = fit(small_cnn(data.num_classes), data.members, TrainRecipe(**settings.get("recipe", {})), seed=seed, device=settings.get("device", "auto"))
    print(f"member accuracy {accuracy(model, data.members):.3f}, test accuracy {accuracy(model, data.test):.3f}")
    print(f"saved {save_model(model.cpu(), HERE / 'dense' / 'model.safetensors', format='safetensors')}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    raise SystemExit(main())
