"""Model I/O refuses untrusted pickles without running them, and every bad input is one clear line."""

from __future__ import annotations

import pickle

import pytest
import torch

from safecompress.errors import UsageError
from safecompress.modelio import load_model, save_model
from safecompress.models import SmallCNN, small_cnn

ARCH = "safecompress.models:small_cnn"


class Payload:
    """Unpickling this creates ``marker``: proof that the file's code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def usage_error(path, **kwargs) -> str:
    with pytest.raises(UsageError) as info:
        load_model(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("writer", ["torch_zip", "torch_legacy", "plain_pickle"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, writer):
    marker = tmp_path / "PAYLOAD_RAN"
    path = tmp_path / "evil.pt"
    payload = {"state_dict": Payload(str(marker))}
    if writer == "torch_zip":
        torch.save(payload, path)
    elif writer == "torch_legacy":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(payload))
    message = usage_error(path, arch=ARCH)
    assert "refusing to unpickle" in message and "arbitrary code" in message and "--trust-pickle" in message
    assert not marker.exists()


def test_whole_module_pickle_needs_trust(tmp_path):
    model = small_cnn().eval()
    path = tmp_path / "whole.pt"
    torch.save(model, path)
    message = usage_error(path)
    assert "safecompress.models.SmallCNN" in message and "state dict, TorchScript or safetensors" in message
    loaded = load_model(path, trust_pickle=True)
    assert isinstance(loaded, SmallCNN) and torch.equal(loaded.classifier[-1].weight, model.classifier[-1].weight)


def test_trusted_plain_pickle_loads(tmp_path):
    model = small_cnn()
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    assert isinstance(load_model(path, trust_pickle=True), SmallCNN)


@pytest.fixture
def state_dict_file(tmp_path):
    return save_model(small_cnn(num_classes=10), tmp_path / "sd.pt")


def test_missing_arch_says_how_to_give_one(state_dict_file):
    message = usage_error(state_dict_file)
    assert "state dict" in message and "--arch torchvision:resnet18 --num-classes 10" in message and "package.module:factory" in message


def test_wrong_num_classes_names_the_shape_mismatch(state_dict_file):
    message = usage_error(state_dict_file, arch=ARCH, num_classes=5)
    assert "'classifier.3.weight' has shape (10, 128) in the file but (5, 128) in the model" in message


def test_wrong_arch_names_the_first_missing_and_unexpected_keys(state_dict_file):
    message = usage_error(state_dict_file, arch="torchvision:resnet18")
    assert "missing key 'conv1.weight'" in message and "unexpected key 'features.0.weight'" in message


@pytest.mark.parametrize(
    "arch, expected",
    [
        ("resnet18", "is not an architecture reference"),
        ("torchvision:no_such_net", "unknown torchvision architecture 'no_such_net'"),
        ("no_such_package.models:net", "cannot import no_such_package.models"),
        ("safecompress.models:no_such_factory", "has no callable 'no_such_factory'"),
        ("safecompress.models:SmallCNN", None),
    ],
)
def test_architecture_references(state_dict_file, arch, expected):
    if expected is None:
        assert isinstance(load_model(state_dict_file, arch=arch), SmallCNN)
    else:
        assert expected in usage_error(state_dict_file, arch=arch)


def test_failing_factory_is_one_line(state_dict_file):
    def broken() -> SmallCNN:
        raise ValueError("no GPU\nsecond line")

    assert "building the architecture broken failed: ValueError: no GPU" in usage_error(state_dict_file, factory=broken)


def test_missing_empty_and_unknown_files(tmp_path):
    assert "model file not found" in usage_error(tmp_path / "absent.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    assert "is empty" in usage_error(tmp_path / "empty.pt")
    (tmp_path / "notes.txt").write_text("hello")
    assert "not a model file SafeCompress can read" in usage_error(tmp_path / "notes.txt")
    (tmp_path / "folder").mkdir()
    assert "without config.json" in usage_error(tmp_path / "folder")


@pytest.mark.parametrize(
    "fmt, name, expected",
    [
        ("state_dict", "m.pt", "truncated or corrupt zip"),
        ("torchscript", "m.ts", "truncated or corrupt zip"),
        ("safetensors", "m.safetensors", "truncated safetensors"),
    ],
)
def test_truncated_files(tmp_path, fmt, name, expected):
    path = save_model(small_cnn(), tmp_path / name, fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert expected in usage_error(path, arch=ARCH)


def test_corrupt_safetensors_header(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes((20).to_bytes(8, "little") + b"{not json at all!!!}")
    assert "header is not valid JSON" in usage_error(path, arch=ARCH)


def test_zip_without_weights(tmp_path):
    import zipfile

    path = tmp_path / "archive.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hi")
    assert "not a model file" in usage_error(path)


def test_torch_file_without_a_state_dict(tmp_path):
    path = tmp_path / "stats.pt"
    torch.save({"epoch": 3, "accuracy": 0.9}, path)
    assert "holds a dict with keys 'epoch', 'accuracy', not a model or a state dict" in usage_error(path, arch=ARCH)
