"""Judging a model never moves or resets the random streams training draws from (dropout, an
adversary's sampling): regression test for the judgement that reseeded the global RNGs."""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path

import numpy as np
import torch

DRAWING_TEST = """
import random

import numpy as np
import torch


def test_draws(record):
    record.metric("torch", float(torch.rand(1)))
    record.metric("numpy", float(np.random.rand()))
    record.metric("python", random.random())
"""


def open_session(root: Path):
    from safecompress.config import config_from_args
    from safecompress.plugins import get_plugin_manager
    from safecompress.runner.session import SafetySession

    previous = Path.cwd()
    os.chdir(root)
    try:
        option = argparse.Namespace(seed=0, device="cpu", rootdir=root, verbose=0, quiet=1)
        session = SafetySession(config_from_args(option, get_plugin_manager(), "test"))
        session.start()
        session.collect()
    finally:
        os.chdir(previous)
    session.set_model(torch.nn.Linear(4, 2))
    return session


def training_draws(judge) -> tuple[torch.Tensor, float, float]:
    """What a training step draws after a judgement: a dropout mask, an adversary's NumPy and
    Python samples, from streams seeded once at the start of training."""
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    dropout = torch.nn.Dropout(0.5).train()
    dropout(torch.ones(64))  # a step before the judgement
    judge()
    return dropout(torch.ones(64)), float(np.random.rand()), random.random()


def test_a_judgement_between_two_training_steps_leaves_the_streams_where_they_were(project) -> None:
    project.write("safety_tests/test_draws.py", DRAWING_TEST)
    session = open_session(project.root)
    try:
        judged = training_draws(lambda: session.run())
        untouched = training_draws(lambda: None)
        assert torch.equal(judged[0], untouched[0]) and judged[1:] == untouched[1:]
    finally:
        session.close()


def test_a_test_draws_from_its_own_seeded_stream_whatever_the_caller_did(project) -> None:
    """Reproducible tests: the same seed gives the same draws inside a test, whatever state the
    training around it left the global generators in."""
    project.write("safety_tests/test_draws.py", DRAWING_TEST)
    session = open_session(project.root)
    try:
        torch.manual_seed(1)
        first = session.run()[0].metrics
        torch.manual_seed(2)
        np.random.seed(2)
        random.seed(2)
        second = session.run()[0].metrics
        assert first == second
    finally:
        session.close()
