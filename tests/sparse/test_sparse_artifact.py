"""The compact sparse artifact: size near the information minimum, bit-exact reload, clear errors."""

from __future__ import annotations

import struct

import pytest
import torch
from safetensors import safe_open
from torch import nn

from safecompress.models import resnet18_small_input, small_cnn
from safecompress.sparse import (
    SparseArtifactError,
    SparseEngine,
    export_program,
    export_state_dict,
    is_sparse_artifact,
    load_sparse_artifact,
    save_sparse_artifact,
)


def bits_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].contiguous().reshape(-1).view(torch.uint8), sb[k].contiguous().reshape(-1).view(torch.uint8)) for k in sa)


@pytest.fixture
def sparse_cnn():
    torch.manual_seed(0)
    model = small_cnn(num_classes=7)
    engine = SparseEngine(model, None, 0.1)
    return model, engine


@pytest.fixture
def saved(sparse_cnn, tmp_path):
    model, engine = sparse_cnn
    path = tmp_path / "cnn.safetensors"
    save_sparse_artifact(model, path, engine.masks, arch="safecompress.models:small_cnn", arch_kwargs={"num_classes": 7}, extra_metadata={"seed": 0})
    return path


def test_round_trip_rebuilds_the_architecture_bit_exactly(sparse_cnn, saved):
    model, engine = sparse_cnn
    loaded, meta = load_sparse_artifact(saved)
    assert bits_equal(model, loaded)
    assert meta["arch"] == "safecompress.models:small_cnn" and meta["arch_kwargs"] == {"num_classes": 7}
    assert meta["density"] == pytest.approx(engine.density()) and meta["extra"] == {"seed": 0}
    assert meta["safecompress_version"] and meta["layers"]["features.3.weight"]["nnz"] == engine.layer_table()[1].nnz
    assert is_sparse_artifact(saved)


def test_fill_a_given_module_or_call_a_factory(sparse_cnn, saved):
    model, _ = sparse_cnn
    target = small_cnn(num_classes=7)
    filled, _ = load_sparse_artifact(saved, target)
    assert filled is target and bits_equal(model, target)
    built, _ = load_sparse_artifact(saved, small_cnn)  # called with the stored kwargs
    assert bits_equal(model, built)
    with pytest.raises(SparseArtifactError, match="does not fit|shape"):
        load_sparse_artifact(saved, small_cnn(num_classes=3))


def test_resnet18_at_5_percent_is_within_1_percent_of_the_information_minimum(tmp_path):
    torch.manual_seed(0)
    model = resnet18_small_input(num_classes=10)
    engine = SparseEngine(model, None, 0.05)
    info = save_sparse_artifact(model, tmp_path / "r18.safetensors", engine.masks, arch="safecompress.models:resnet18_small_input")
    kept = sum(r.nnz for r in engine.layer_table())
    maskable = sum(r.numel for r in engine.layer_table())
    rest = sum(v.nbytes for k, v in model.state_dict().items() if k not in engine.masks)
    assert info.info_min_bytes == 4 * kept + (maskable + 7) // 8 + rest
    assert info.ratio_to_info_min <= 1.01  # docs/sparse.md: 1.0043× (the header is a few KB)
    assert info.ratio_to_dense < 0.1
    loaded, _ = load_sparse_artifact(info.path)
    assert bits_equal(model, loaded)


def test_torchvision_shorthand_reference(tmp_path):
    from torchvision.models import mobilenet_v3_small

    torch.manual_seed(0)
    model = mobilenet_v3_small(num_classes=5)
    engine = SparseEngine(model, None, 0.2)
    path = tmp_path / "mnv3.safetensors"
    save_sparse_artifact(model, path, engine.masks, arch="torchvision:mobilenet_v3_small", arch_kwargs={"num_classes": 5})
    loaded, _ = load_sparse_artifact(path)
    assert bits_equal(model, loaded)


def test_masks_default_to_nonzeros_and_tied_weights_are_stored_once(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(30, 8), nn.Linear(8, 8), nn.Linear(8, 30, bias=False))
    model[2].weight = model[0].weight
    SparseEngine(model, None, 0.5, embeddings=True)
    info = save_sparse_artifact(model, tmp_path / "tied.safetensors")
    loaded = nn.Sequential(nn.Embedding(30, 8), nn.Linear(8, 8), nn.Linear(8, 30, bias=False))
    _, meta = load_sparse_artifact(info.path, loaded)
    assert bits_equal(model, loaded)
    assert meta["aliases"] == {"2.weight": "0.weight"}
    with safe_open(info.path, "pt") as f:
        assert "dense/2.weight" not in f.keys()


def test_bf16_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    model = small_cnn().to(torch.bfloat16)
    engine = SparseEngine(model, None, 0.2)
    save_sparse_artifact(model, tmp_path / "bf16.safetensors", engine.masks)
    loaded, _ = load_sparse_artifact(tmp_path / "bf16.safetensors", small_cnn().to(torch.bfloat16))
    assert bits_equal(model, loaded)


def test_weights_outside_the_mask_are_refused(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="outside its mask"):
        save_sparse_artifact(model, tmp_path / "x.safetensors", {"0.weight": torch.zeros(4, 4, dtype=torch.bool)})


def test_damaged_files_raise_one_line_value_errors(saved, tmp_path):
    data = saved.read_bytes()
    header_end = 8 + struct.unpack("<Q", data[:8])[0]
    damaged = {
        "empty": b"",
        "garbage": b"not a model at all" * 10,
        "truncated_header": data[: header_end // 2],
        "truncated_data": data[: len(data) - 100],
        "flipped_value": data[:-50] + bytes([data[-50] ^ 0x01]) + data[-49:],
        "flipped_header": data[:20] + b"#" + data[21:],
    }
    for name, content in damaged.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(content)
        with pytest.raises(ValueError) as err:
            load_sparse_artifact(path)
        assert isinstance(err.value, SparseArtifactError) and "\n" not in str(err.value), name
    with pytest.raises(SparseArtifactError, match="no such file"):
        load_sparse_artifact(tmp_path / "missing.safetensors")
    assert not is_sparse_artifact(tmp_path / "garbage.safetensors")
    assert not is_sparse_artifact(tmp_path / "missing.safetensors")


def test_plain_safetensors_is_not_an_artifact(tmp_path):
    plain = export_state_dict(small_cnn(), tmp_path / "dense.safetensors")
    assert not is_sparse_artifact(plain)
    with pytest.raises(SparseArtifactError, match="not a safecompress sparse artifact"):
        load_sparse_artifact(plain)


def test_untrusted_architecture_is_not_imported(sparse_cnn, tmp_path):
    model, engine = sparse_cnn
    path = tmp_path / "evil.safetensors"
    save_sparse_artifact(model, path, engine.masks, arch="os:system", arch_kwargs={"command": "false"})
    with pytest.raises(SparseArtifactError, match="not a registered model factory.*pass --arch"):
        load_sparse_artifact(path)
    save_sparse_artifact(model, path, engine.masks)
    with pytest.raises(SparseArtifactError, match="names no architecture"):
        load_sparse_artifact(path)


def test_exports_for_users_who_want_a_normal_model(sparse_cnn, tmp_path):
    model, _ = sparse_cnn
    x = torch.randn(2, 1, 28, 28)
    for name in ("plain.safetensors", "plain.pt"):
        plain = small_cnn(num_classes=7)
        path = export_state_dict(model, tmp_path / name)
        if name.endswith(".pt"):
            plain.load_state_dict(torch.load(path, weights_only=True))
        else:
            from safetensors.torch import load_file

            plain.load_state_dict(load_file(path))
        assert bits_equal(model, plain)
    program = torch.export.load(export_program(model, tmp_path / "cnn.pt2", (x,)))
    assert torch.equal(program.module()(x), model.eval()(x))
