"""The second hostile battery's bad inputs (N9, N11, N12): each is one line and exit 4 (or a clean
refusal), never exit 3, a traceback or a hang."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from safecompress.models import small_cnn
from safecompress.safetensors_bytes import serialize
from safecompress.sparse import save_sparse_artifact

ARCH = ("--arch", "safecompress.models:small_cnn")
ENV = {**os.environ, "SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD": "1", "HF_HUB_OFFLINE": "1"}


@pytest.fixture
def cnn_project(bare_project):
    torch.save(small_cnn().state_dict(), bare_project.root / "cnn.pt")
    return bare_project


def artifact_with_kwargs(path: Path, arch_kwargs: dict) -> None:
    save_sparse_artifact(small_cnn(), path, arch="safecompress.models:small_cnn", arch_kwargs={"num_classes": 10})
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata())
    metadata["arch_kwargs"] = json.dumps(arch_kwargs)
    path.write_bytes(serialize(load_file(str(path)), metadata))


@pytest.mark.parametrize(
    ("arch_kwargs", "extra", "expected"),
    [
        ({"num_classes": "ten"}, (), "num_classes is 'ten', not a positive whole number"),
        ({"num_classes": 10, "width": "abc"}, (), "building 'safecompress.models:small_cnn' with the recorded arguments (num_classes, width) on the meta device failed (TypeError"),
        ({"num_classes": 10, "width": 10**30}, (), "is 1000000000000000000000000000000, beyond"),
        ({"num_classes": 10, "width": 10**30}, ARCH, "is 1000000000000000000000000000000, beyond"),
        ({"num_classes": 10, "width": [16]}, ARCH, "must be a finite JSON scalar, not list"),
    ],
    ids=["classes a string", "width a string", "huge int", "huge int --arch", "list --arch"],
)
def test_recorded_arguments_of_the_wrong_kind(bare_project, capsys, one_line_error, arch_kwargs, extra, expected):
    artifact_with_kwargs(bare_project.root / "m.safetensors", arch_kwargs)
    assert bare_project.run("test", "m.safetensors", *extra, "-q") == 4
    assert expected in one_line_error(capsys.readouterr().out)


def test_an_unsigned_dtype_in_a_state_dict(cnn_project, capsys, one_line_error):
    state = {k: v.clone() for k, v in small_cnn().state_dict().items()}
    state["features.0.bias"] = torch.zeros(state["features.0.bias"].shape, dtype=torch.uint32)
    save_file(state, str(cnn_project.root / "u32.safetensors"))
    assert cnn_project.run("test", "u32.safetensors", *ARCH, "-q") == 4
    assert "'features.0.bias' is torch.uint32 in the file but torch.float32 in the model" in one_line_error(capsys.readouterr().out)


@pytest.mark.parametrize(
    "args",
    [("test", "cnn.pt", *ARCH, "--seed", "99999999999999999999"), ("audit", "cnn.pt", *ARCH, "--seed", "99999999999999999999"), ("demo", "--seed", "4294967296")],
    ids=["test", "audit", "demo"],
)
def test_a_seed_beyond_what_seeding_takes(cnn_project, capsys, one_line_error, args):
    assert cnn_project.run(*args, "-q") == 4
    assert "is above the maximum 4294967295" in one_line_error(capsys.readouterr().out)


def test_the_bridge_refuses_a_negative_seed(cnn_project):
    result = cnn_project.pytest("safety_tests", "--safecompress-model", "cnn.pt", "--safecompress-arch", ARCH[1], "--safecompress-seed=-1", "-q")
    out = result.stdout + result.stderr
    assert result.returncode == 4 and "--seed must be a whole number from 0 to 4294967295, not -1" in out, out
    assert "Traceback" not in out and "INTERNALERROR" not in out


def test_a_lone_surrogate_in_a_hugging_face_config(bare_project, capsys, one_line_error):
    folder = bare_project.root / "hf"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "\\udcff"}')
    assert bare_project.run("test", "hf", "-q") == 4
    assert "\\udcff" in one_line_error(capsys.readouterr().out)


@pytest.mark.parametrize(("seeds", "expected"), [("-1", "positive count"), ("abc", "'abc'"), ("1,-2", "distinct whole numbers"), ("3,3", "distinct whole numbers")])
def test_bench_seeds(bare_project, capsys, one_line_error, seeds, expected):
    assert bare_project.run("bench", "compress", "--seeds", seeds) == 4
    assert expected in one_line_error(capsys.readouterr().out)


def test_bench_merge_of_a_file_with_nan(bare_project, capsys, one_line_error):
    (bare_project.root / "a.json").write_text('{"seeds": [0], "mean": NaN}')
    assert bare_project.run("bench", "compress", "--merge", "a.json") == 4
    assert "a.json is not a benchmark JSON file (it holds NaN)" in one_line_error(capsys.readouterr().out)


def test_a_density_that_empties_layers(cnn_project, capsys, one_line_error):
    """Regression: --density 3e-6 shipped 3 of 4 masked layers all zero."""
    assert cnn_project.run("compress", "cnn.pt", *ARCH, "--density", "3e-6", "--out", "out", "-q") == 4
    line = one_line_error(capsys.readouterr().out)
    assert "keeps no weight in features.0.weight" in line and "dead layers" in line


@pytest.mark.parametrize(
    "make",
    [
        lambda root: (root / "pyproject.toml").write_bytes(b"[project]\nname = '\xff\xfe'\n"),
        lambda root: (root / "pyproject.toml").mkdir(),
        lambda root: os.mkfifo(root / "pyproject.toml"),
    ],
    ids=["not UTF-8", "a folder", "a FIFO"],
)
def test_init_over_a_bad_pyproject(tmp_path, make):
    make(tmp_path)
    result = subprocess.run([sys.executable, "-m", "safecompress", "init", "--dir", str(tmp_path)], env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 4 and "Traceback" not in result.stderr, result.stdout + result.stderr
    assert "is not UTF-8 text" in result.stdout or "is not a regular file" in result.stdout, result.stdout
    assert not (tmp_path / "conftest.py").exists()


def test_init_refuses_a_file_as_dir_a_linked_folder_and_a_bad_name(tmp_path, capsys, one_line_error):
    from safecompress.cli import main

    (tmp_path / "file").write_text("x")
    assert main(["init", "--dir", str(tmp_path / "file")]) == 4
    assert "is a file, not a folder" in one_line_error(capsys.readouterr().out)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    (project / "safety_tests").symlink_to(elsewhere)
    assert main(["init", "--dir", str(project)]) == 4
    assert "writes nothing through a symbolic link" in one_line_error(capsys.readouterr().out)
    assert list(elsewhere.iterdir()) == [] and not (project / "conftest.py").exists()
    assert main(["init", "--dir", str(tmp_path / "fresh"), "--data", "\udcff"]) == 4
    assert "is not a dataset name" in one_line_error(capsys.readouterr().out)
    assert not (tmp_path / "fresh" / "pyproject.toml").exists()


def _small_files(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_is_one_line_and_keeps_earlier_files(cnn_project):
    """Regression: disk full ended in exit 3 (torch's inline_container.cc enforce fail)."""
    report = cnn_project.root / "r.xml"
    report.write_text("earlier report")
    command = [sys.executable, "-m", "safecompress", "test", "cnn.pt", *ARCH, "--junitxml", "r.xml", "-q"]
    result = subprocess.run(command, cwd=cnn_project.root, env=ENV, capture_output=True, text=True, timeout=300, preexec_fn=_small_files(64))
    assert result.returncode == 4 and "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    assert "cannot write" in result.stdout and "File too large" in result.stdout
    assert report.read_text() == "earlier report"


SAVE_A_CHECKPOINT = """
import sys, torch
from pathlib import Path
from safecompress.driver.checkpoint import save_checkpoint
from safecompress.errors import UsageError
try:
    save_checkpoint(Path(sys.argv[1]), {"format": "x", "model": torch.zeros(100_000)})
except UsageError as exc:
    print("USAGE", exc)
"""


def test_a_checkpoint_on_a_full_disk(tmp_path):
    result = subprocess.run([sys.executable, "-c", SAVE_A_CHECKPOINT, str(tmp_path / "checkpoint.pt")], env=ENV, capture_output=True, text=True, timeout=120, preexec_fn=_small_files(4096))
    assert "USAGE cannot write" in result.stdout and "File too large" in result.stdout, result.stdout + result.stderr
    assert not any(tmp_path.iterdir())  # no half-written file left behind


@pytest.mark.parametrize(
    "spoil",
    [
        lambda log: log.write_bytes(b"\xff\xfe not text\n"),
        lambda log: log.write_text("not json\n" * 50),
        lambda log: (log.unlink(), log.mkdir()),
        lambda log: (log.unlink(), os.mkfifo(log)),
    ],
    ids=["not UTF-8", "not JSON", "a folder", "a FIFO"],
)
def test_resume_with_a_bad_decision_log(finished_run, tmp_path, spoil):
    from compress_project import QUICK

    root = tmp_path / "copy"
    shutil.copytree(finished_run, root)
    spoil(root / "out" / "decisions.jsonl")
    command = [sys.executable, "-m", "safecompress", "compress", "parent.pt", "--out", "out", "--resume", *QUICK]
    result = subprocess.run(command, cwd=root, env=ENV, capture_output=True, text=True, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 4 and "Traceback" not in out, out
    assert "cannot resume" in out and "decisions.jsonl" in out, out


def test_resume_from_a_checkpoint_with_a_flipped_byte(finished_run, tmp_path):
    """End to end: the digest refuses a damaged checkpoint.pt before anything is unpickled
    (7 of 20 random flips used to resume into a different model with exit 0)."""
    from compress_project import QUICK

    root = tmp_path / "copy"
    shutil.copytree(finished_run, root)
    checkpoint = root / "out" / "checkpoint.pt"
    raw = bytearray(checkpoint.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    checkpoint.write_bytes(bytes(raw))
    command = [sys.executable, "-m", "safecompress", "compress", "parent.pt", "--out", "out", "--resume", *QUICK]
    result = subprocess.run(command, cwd=root, env=ENV, capture_output=True, text=True, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 4 and "Traceback" not in out and "its digest does not match: the file is damaged" in out, out
