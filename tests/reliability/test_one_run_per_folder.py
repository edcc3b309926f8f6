"""One run per output folder, and ``--overwrite`` removes every entry a run can leave.

Regressions: two concurrent ``compress`` runs into one folder both said "gate passed", with
interleaved decision logs and a report counting the other run's updates (N6); ``--overwrite`` on a
folder holding ``hf/`` deleted the checkpoint and decisions, then crashed on ``IsADirectoryError``
and left half the old run (N8).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from safecompress.driver.outputs import LOCK_NAME, OutputLock, prepare_output_folder
from safecompress.errors import UsageError

HOLD_THE_LOCK = """
import sys, time
from pathlib import Path
from safecompress.driver.outputs import OutputLock
with OutputLock(Path(sys.argv[1])):
    print("holding", flush=True)
    time.sleep(60)
"""


def test_a_second_run_is_refused_naming_the_holder(bare_project, capsys, one_line_error):
    out = bare_project.root / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        (bare_project.root / "parent.pt").write_bytes(b"not read: the folder is refused first")
        assert bare_project.run("compress", "parent.pt", "--out", "out", "-q") == 4
        line = one_line_error(capsys.readouterr().out)
        assert "is in use by another run" in line and f"pid {holder.pid}" in line
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written, nothing removed
    finally:
        holder.kill()
        holder.wait()
    with OutputLock(out) as lock:  # released when its holder died, even by SIGKILL
        assert lock.holds(out)


def test_the_lock_is_exclusive_and_released(tmp_path):
    with OutputLock(tmp_path / "out"):
        with pytest.raises(UsageError, match="in use by another run"):
            OutputLock(tmp_path / "out").__enter__()
    with OutputLock(tmp_path / "out"):
        pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        OutputLock(tmp_path / "file").__enter__()


def test_overwrite_removes_folders_and_links_but_nothing_else(tmp_path):
    out = tmp_path / "out"
    (out / "hf").mkdir(parents=True)
    (out / "hf" / "model.safetensors").write_bytes(b"old")
    (out / ".hf.abc123.tmp").mkdir()  # a staging folder a killed run left
    (out / "checkpoint.pt").write_bytes(b"old")
    (out / "decisions.jsonl").write_text("{}\n")
    outside = tmp_path / "precious.md"
    outside.write_text("keep me")
    os.symlink(outside, out / "report.md")
    (out / "notes.txt").write_text("the user's own file")
    prepare_output_folder(out, resume=False, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert outside.read_text() == "keep me"
