"""Train the dense parent: a tiny BERT (2 layers, h=128) on WordNet gloss classification.

    python train_dense.py

Data sizes, tokenizer, seed and recipe come from ``[tool.safecompress]`` in pyproject.toml, the
settings ``safecompress compress`` and ``safecompress test`` read, so the model is trained on exactly
the members the safety tests probe. Writes ``dense/model.safetensors`` (a state dict; the
``model_factory`` fixture in conftest.py rebuilds the architecture) and, with ``--hf``, a
``save_pretrained`` folder ``dense/hf/`` that loads without any factory.

Without WordNet (Debian package ``wordnet-base``) it says so and exits 0 without training.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bert_project import MISSING_WORDNET, build_data, build_model, read_settings, wordnet_available  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    settings = read_settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE / "dense" / "model.safetensors", help="where to save the dense model")
    parser.add_argument("--hf", action="store_true", help="also save a Hugging Face folder beside it (dense/hf)")
    parser.add_argument("--device", default=settings.get("device", "auto"), help="auto, cpu or cuda")
    args = parser.parse_args(argv)
    options = dict(settings.get("data-options", {}))
    if settings.get("data") == "wordnet" and not wordnet_available(Path(options.get("root", "/usr/share/wordnet"))):
        print(f"skipped: {MISSING_WORDNET}")
        return 0

    import torch

    from safecompress.inference import accuracy
    from safecompress.modelio import save_model
    from safecompress.training import TrainRecipe, fit

    seed = int(settings.get("seed", 0))
    recipe = TrainRecipe(**settings.get("recipe", {}))
    started = time.perf_counter()
    splits = build_data(settings["data"], options, seed)
    vocab, length = int(splits.extra["vocab_size"]), int(splits.extra["max_length"])
    print(
        f"{splits.source}: {len(splits.members)} members, {len(splits.non_members)} non-members, {len(splits.population)} population, "
        f"{len(splits.test)} test, {splits.num_classes} classes; vocabulary of {vocab} learned from the members "
        f"({time.perf_counter() - started:.1f}s)"
    )

    started = time.perf_counter()
    torch.manual_seed(seed)  # the initialisation; fit() seeds shuffling and dropout itself
    model = build_model(splits.num_classes, vocab, length)
    model = fit(model, splits.members, recipe, seed=seed, device=args.device)
    seconds = time.perf_counter() - started
    train_acc, test_acc = accuracy(model, splits.members), accuracy(model, splits.test)
    print(f"trained {recipe.epochs} epochs in {seconds:.1f}s ({recipe.epochs * len(splits.members) / seconds:.0f} samples/s): member accuracy {train_acc:.3f}, test accuracy {test_acc:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(f"saved {save_model(model.cpu(), args.out, format='safetensors')}")
    if args.hf:
        print(f"saved {save_model(model, args.out.parent / 'hf', format='hf')}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    raise SystemExit(main())
