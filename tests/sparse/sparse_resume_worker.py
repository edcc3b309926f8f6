"""Trains the resume scenario in a fresh process: ``straight`` (2N steps, and N steps + checkpoint) or ``resume``.

Usage: python sparse_resume_worker.py {straight,resume} DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from sparse_testkit import TinyNet, make_optimizer, train_step  # noqa: E402

from safecompress.sparse import PruneSchedule, SparseEngine  # noqa: E402

N = 11  # mid momentum window (steps 10–12) of the update at step 12
CASES = {"random": "nesterov", "gradient": "adam", "momentum": "sgd", "unfired": "adamw"}


def setup(growth: str):
    torch.manual_seed(0)
    model = TinyNet()
    opt = make_optimizer(CASES[growth], model.parameters())
    schedule = PruneSchedule(2 * N + 2, update_interval=4)
    engine = SparseEngine(model, opt, 0.1, growth=growth, schedule=schedule, momentum_window=3, seed=5)
    return model, opt, engine


def run(model, opt, engine, start: int, stop: int) -> None:
    for step in range(start, stop):
        train_step(model, opt, engine, step)


def result(model, engine) -> dict:
    return {"model": model.state_dict(), "masks": engine.masks, "updates": engine.num_updates, "explored": engine.exploration_rate()}


def main(mode: str, folder: Path) -> None:
    torch.set_num_threads(1)
    for growth in CASES:
        model, opt, engine = setup(growth)
        if mode == "straight":
            run(model, opt, engine, 0, 2 * N)
            torch.save(result(model, engine), folder / f"{growth}-straight.pt")
            model, opt, engine = setup(growth)
            run(model, opt, engine, 0, N)
            checkpoint = {"model": model.state_dict(), "optimizer": opt.state_dict(), "engine": engine.state_dict(), "rng": torch.get_rng_state()}
            torch.save(checkpoint, folder / f"{growth}-checkpoint.pt")
        else:
            checkpoint = torch.load(folder / f"{growth}-checkpoint.pt", weights_only=True)
            model.load_state_dict(checkpoint["model"])
            opt.load_state_dict(checkpoint["optimizer"])
            engine.load_state_dict(checkpoint["engine"])
            torch.set_rng_state(checkpoint["rng"])
            run(model, opt, engine, N, 2 * N)
            torch.save(result(model, engine), folder / f"{growth}-resumed.pt")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
