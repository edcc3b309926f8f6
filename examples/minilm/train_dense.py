"""Fine-tune the dense parent: pretrained MiniLM-L6 with a fresh head on this project's members.

Reads ``[tool.safecompress]`` of this folder, so the parent, its reference models and the safety
tests share one data draw and one recipe. Saves a Hugging Face ``save_pretrained`` folder
(``dense/hf``), which ``safecompress compress`` and ``safecompress test`` load as is.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from minilm_project import HERE, build_data, model_factory, read_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "dense" / "hf", help="where to save the dense parent (a save_pretrained folder)")
    args = parser.parse_args()

    import torch

    from safecompress.inference import accuracy
    from safecompress.modelio import save_model
    from safecompress.training import TrainRecipe, fit

    settings = read_settings()
    seed = int(settings.get("seed", 0))
    data = build_data(settings.get("data-options", {}), seed)
    recipe = TrainRecipe(**settings.get("recipe", {}))
    torch.manual_seed(seed)
    started = time.perf_counter()
    model = fit(model_factory(data)(), data.members, recipe, seed=seed, device="cpu")
    print(f"fine-tuned {type(model).__name__} on {len(data.members)} members, {recipe.epochs} epochs, in {time.perf_counter() - started:.0f}s")
    print(f"member accuracy {accuracy(model, data.members):.3f}, test accuracy {accuracy(model, data.test):.3f}")
    print(f"saved {save_model(model.cpu(), args.out, format='hf')}")


if __name__ == "__main__":
    main()
