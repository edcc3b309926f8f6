"""No earlier result is ever lost: a finished run's folder is refused, outputs are written atomically
and never through a planted symlink, and --resume continues only the run it checkpointed."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from compress_project import QUICK, run_in

from safecompress.driver.checkpoint import read_checkpoint, save_checkpoint
from safecompress.driver.outputs import LOCK_NAME
from safecompress.models import small_cnn
from safecompress.sparse import export_state_dict

pytestmark = pytest.mark.slow

# Long enough to be killed mid-run: a few seconds per update on two CPU cores.
LONGER = ("--arch", "safecompress.models:small_cnn", "--num-classes", "10", "--updates", "8", "--epochs", "40", "-q")


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file in ``folder``: what 'intact' means (the lock names its latest holder, no result)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file() and p.name != LOCK_NAME}


def copy_of(finished_run: Path, tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(finished_run, root)
    return root


def test_a_second_run_into_a_finished_folder_is_refused_and_the_first_stays_intact(finished_run, capsys, one_line_error):
    before = digests(finished_run / "out")
    assert {"report.json", "model.safetensors", "decisions.jsonl", "checkpoint.pt"} <= set(before)
    assert run_in(finished_run, "compress", "parent.pt", "--out", "out", *QUICK) == 4
    line = one_line_error(capsys.readouterr().out)
    assert "holds an earlier run" in line and "--resume" in line and "--overwrite" in line
    assert digests(finished_run / "out") == before


def kill_after_updates(root: Path, args: list[str], updates: int) -> int:
    """Start ``safecompress compress ARGS`` in ``root``, SIGKILL it once ``updates`` are logged (or
    let it end, if it ends first); returns its exit status (-9 when killed)."""
    env = {**os.environ, "SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD": "1", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "safecompress", "compress", *args], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log, report = root / "out" / "decisions.jsonl", root / "out" / "report.json"
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None:
        # While the finished run's report is there, the log is still that run's, not this one's.
        if not report.exists() and log.exists() and len(log.read_text().splitlines()) >= updates:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    return process.wait(timeout=60)


def test_killed_second_run_leaves_the_first_intact(finished_run, tmp_path):
    root = copy_of(finished_run, tmp_path)
    before = digests(root / "out")
    assert kill_after_updates(root, ["parent.pt", "--out", "out", *LONGER], updates=2) == 4  # refused at once
    assert digests(root / "out") == before


def test_overwrite_replaces_the_whole_earlier_run_before_writing(finished_run, tmp_path):
    """Killed after two updates, an --overwrite run leaves its own decisions and no stale report."""
    root = copy_of(finished_run, tmp_path)
    (root / "out" / "notes.txt").write_text("mine")
    (root / "out" / "hf").mkdir()  # a transformers run's folder: --overwrite crashed on it (IsADirectoryError)
    (root / "out" / "hf" / "config.json").write_text("{}")
    assert kill_after_updates(root, ["parent.pt", "--out", "out", "--overwrite", *LONGER], updates=2) == -signal.SIGKILL
    left = set(digests(root / "out"))
    assert "report.json" not in left and "model.safetensors" not in left and not (root / "out" / "hf").exists()
    assert (root / "out" / "notes.txt").read_text() == "mine"  # only the run's own outputs are replaced


def test_resume_refuses_another_run(finished_run, tmp_path, capsys, one_line_error):
    root = copy_of(finished_run, tmp_path)
    state = torch.load(root / "parent.pt", weights_only=True)
    torch.save({k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}, root / "other.pt")
    cases = [
        (["other.pt"], "the parent model (sha256"),
        (["parent.pt", "--threshold", "entropy_min=0.5"], "the thresholds (entropy_min)"),
    ]
    for args, expected in cases:
        assert run_in(root, "compress", *args, "--out", "out", "--resume", *QUICK) == 4
        line = one_line_error(capsys.readouterr().out)
        assert "not the run in the checkpoint" in line and expected in line, line
    (root / "safety_tests" / "test_more.py").write_text("def test_more():\n    pass\n")
    assert run_in(root, "compress", "parent.pt", "--out", "out", "--resume", *QUICK) == 4
    assert "the collected tests (1 added, 0 removed)" in one_line_error(capsys.readouterr().out)
    (root / "safety_tests" / "test_more.py").unlink()
    conftest = root / "conftest.py"
    conftest.write_text(conftest.read_text().replace("members=256", "members=250"))
    assert run_in(root, "compress", "parent.pt", "--out", "out", "--resume", *QUICK) == 4
    assert "the data (sha256" in one_line_error(capsys.readouterr().out)


def test_resume_without_a_checkpoint_says_so(finished_run, capsys, one_line_error):
    assert run_in(finished_run, "compress", "parent.pt", "--out", "empty", "--resume", *QUICK) == 4
    assert "no checkpoint at" in one_line_error(capsys.readouterr().out)


@pytest.mark.parametrize("out", ["parent.pt", "parent.pt/sub"], ids=["a file", "below a file"])
def test_an_unusable_out_is_refused_before_training(finished_run, capsys, one_line_error, out):
    started = time.perf_counter()
    assert run_in(finished_run, "compress", "parent.pt", "--out", out, *QUICK) == 4
    assert "--out" in one_line_error(capsys.readouterr().out)
    assert time.perf_counter() - started < 30  # refused up front, not after training (a loose bound)


def test_exports_are_atomic_and_never_follow_a_symlink(tmp_path, monkeypatch):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "model_dense_export.pt"
    link.symlink_to(target)
    export_state_dict(small_cnn(), link)
    assert target.read_text() == "keep me" and not link.is_symlink()
    good = link.read_bytes()

    def dies_mid_write(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half")
        raise KeyboardInterrupt  # the process is stopped mid-write

    monkeypatch.setattr(torch, "save", dies_mid_write)
    with pytest.raises(KeyboardInterrupt):
        export_state_dict(small_cnn(), link)
    assert link.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_the_decision_log_is_never_written_through_a_symlink(tmp_path):
    from safecompress.fsutil import append_line

    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    (tmp_path / "decisions.jsonl").symlink_to(target)
    with pytest.raises(OSError):
        append_line(tmp_path / "decisions.jsonl", "{}")
    assert target.read_text() == "keep me"


def test_the_demo_refuses_to_replace_an_earlier_demo(tmp_path, capsys, one_line_error):
    from safecompress.cli import main

    out = tmp_path / "demo"
    out.mkdir()
    (out / "report.json").write_text("{}")
    repository = Path(__file__).resolve().parents[2]
    assert main(["demo", "--out", str(out), "--rootdir", str(repository), "-q"]) == 4
    line = one_line_error(capsys.readouterr().out)
    assert "--overwrite" in line and "--resume" not in line
    assert (out / "report.json").read_text() == "{}"


def test_a_checkpoint_of_another_format_version_is_refused(finished_run, tmp_path, capsys, one_line_error):
    root = copy_of(finished_run, tmp_path)
    checkpoint = read_checkpoint(root / "out" / "checkpoint.pt")
    checkpoint["format"] = "safecompress.checkpoint/1"
    save_checkpoint(root / "out" / "checkpoint.pt", checkpoint)
    assert run_in(root, "compress", "parent.pt", "--out", "out", "--resume", *QUICK) == 4
    assert "written by another safecompress version (safecompress.checkpoint/1)" in one_line_error(capsys.readouterr().out)
