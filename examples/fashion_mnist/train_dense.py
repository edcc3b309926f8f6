"""Train the dense parent: a SmallCNN on the Fashion-MNIST members, by the project's own recipe.

    python train_dense.py                          # embedded subset (ships with safecompress)
    python train_dense.py --data fashion-mnist     # Debian's full dataset-fashion-mnist

Data sizes, seed and recipe come from ``[tool.safecompress]`` in pyproject.toml, the same settings
``safecompress compress`` and ``safecompress test`` read, so the model is trained on exactly the
members the safety tests probe. Writes ``dense/model.safetensors`` (a plain state dict; the
``model_factory`` fixture in conftest.py supplies the architecture when it is loaded).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fmnist_project import DATA_ENV, DATASETS, build_data, build_model, data_name, read_settings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    settings = read_settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=DATASETS, help=f"dataset (default: ${DATA_ENV}, else pyproject's data = {settings.get('data')!r})")
    parser.add_argument("--out", type=Path, default=HERE / "dense" / "model.safetensors", help="where to save the dense model")
    parser.add_argument("--device", default=settings.get("device", "auto"), help="auto, cpu or cuda")
    args = parser.parse_args(argv)

    import torch

    from safecompress.inference import accuracy
    from safecompress.modelio import save_model
    from safecompress.training import TrainRecipe, fit

    name = args.data or data_name(settings.get("data"))
    if name != data_name(settings.get("data")):
        # The safety tests rebuild the data from the same settings: they must see the same members.
        print(
            f"note: the safety tests will use {data_name(settings.get('data'))!r}; export {DATA_ENV}={name} for `safecompress compress` and `safecompress test` too, or they audit the wrong members",
            file=sys.stderr,
        )
    seed = int(settings.get("seed", 0))
    recipe = TrainRecipe(**settings.get("recipe", {}))
    splits = build_data(name, settings.get("data-options", {}), seed)
    print(f"{name}: {len(splits.members)} members, {len(splits.non_members)} non-members, {len(splits.population)} population, {len(splits.test)} test; recipe {recipe.describe()}")

    started = time.perf_counter()
    torch.manual_seed(seed)  # the initialisation; fit() seeds shuffling itself
    model = fit(build_model(splits.num_classes), splits.members, recipe, seed=seed, device=args.device)
    seconds = time.perf_counter() - started
    train_acc, test_acc = accuracy(model, splits.members), accuracy(model, splits.test)
    print(f"trained in {seconds:.1f}s: member accuracy {train_acc:.3f}, test accuracy {test_acc:.3f} (the gap is what membership inference feeds on)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    path = save_model(model.cpu(), args.out, format="safetensors")
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    raise SystemExit(main())
