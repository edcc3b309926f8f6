"""A Hugging Face folder must not run its own Python code unless the user says --trust-remote-code.

Regression: a folder whose config.json has ``auto_map`` beside a Python file made transformers ask
"run the custom code? [y/N]", and answering y ran it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from safecompress.errors import UsageError
from safecompress.modelio import load_model
from safecompress.models import tiny_bert

EVIL_CODE = """
from pathlib import Path

from transformers import BertConfig, BertForSequenceClassification

Path({marker!r}).write_text("ran")


class EvilBert(BertForSequenceClassification):
    config_class = BertConfig
"""


def evil_folder(root, marker):
    folder = root / "evil_hf"
    tiny_bert(num_classes=3, vocab_size=64, hidden_size=32, layers=1).save_pretrained(str(folder))
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "evil.EvilBert"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text(EVIL_CODE.format(marker=str(marker)))
    return folder


@pytest.mark.parametrize(
    "command",
    [("test", "evil_hf"), ("compress", "evil_hf", "--out", "out"), ("audit", "evil_hf", "--attack", "loss")],
    ids=["test", "compress", "audit"],
)
def test_auto_map_folder_is_refused(bare_project, marker, capsys, one_line_error, command):
    evil_folder(bare_project.root, marker)
    assert bare_project.run(*command, "-q") == 4
    line = one_line_error(capsys.readouterr().out)
    assert "asks to run its own Python code" in line and "auto_map" in line and "--trust-remote-code" in line
    assert not marker.exists()


def test_load_model_and_the_bridge_refuse_it(bare_project, marker):
    folder = evil_folder(bare_project.root, marker)
    with pytest.raises(UsageError, match="--trust-remote-code"):
        load_model(folder)
    result = bare_project.pytest("safety_tests", "--safecompress-model", "evil_hf", "-q")
    assert result.returncode == 4 and "auto_map" in result.stdout + result.stderr, result.stdout + result.stderr
    assert not marker.exists()


def test_trust_remote_code_is_the_explicit_opt_in(tmp_path, marker):
    """With the flag, transformers imports the folder's code: the flag really is what decides."""
    folder = evil_folder(tmp_path, marker)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    code = f"from safecompress.modelio import load_model; load_model({str(folder)!r}, trust_remote_code=True)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert marker.exists()
