import os
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from deepgen_helpers import checkpoints as ck


@dataclass
class TinyConfig:
    hidden: int = 4


class Tiny(nn.Module):
    def __init__(self, cfg=TinyConfig()):
        super().__init__()
        self.fc = nn.Linear(3, cfg.hidden)


def test_roundtrip_keeps_weights_config_and_metadata(tmp_path):
    torch.manual_seed(0)
    model = Tiny()
    path = ck.save_checkpoint(tmp_path / "m.pt", model, TinyConfig(), {"epochs": 2})
    payload = ck.load_checkpoint(path)
    assert payload["config"] == {"hidden": 4} and payload["metadata"] == {"epochs": 2}
    other = Tiny()
    ck.load_into(other, path)
    assert torch.equal(other.fc.weight, model.fc.weight)
    # the file is a plain dict of tensors: it loads with weights_only=True
    assert isinstance(torch.load(path, weights_only=True)["state_dict"]["fc.weight"], torch.Tensor)


def test_half_precision_storage_halves_the_file_and_loads_as_float32(tmp_path):
    torch.manual_seed(0)
    model = Tiny(TinyConfig(hidden=4096))
    full = ck.save_checkpoint(tmp_path / "full.pt", model, TinyConfig(hidden=4096))
    half = ck.save_checkpoint(
        tmp_path / "half.pt", model, TinyConfig(hidden=4096), {"epochs": 2}, half=True
    )
    payload = ck.load_checkpoint(half)
    assert payload["state_dict"]["fc.weight"].dtype == torch.float16
    assert payload["metadata"] == {"epochs": 2, "stored_dtype": "float16"}
    assert half.stat().st_size < 0.6 * full.stat().st_size
    other = Tiny(TinyConfig(hidden=4096))
    ck.load_into(other, half)
    assert other.fc.weight.dtype == torch.float32  # cast back to the model's dtype
    assert torch.equal(
        other.fc.weight, model.fc.weight.half().float()
    )  # exactly the rounded weights
    assert not torch.equal(other.fc.weight, model.fc.weight)


def test_mismatched_architecture_is_refused_and_model_unchanged(tmp_path):
    path = ck.save_checkpoint(tmp_path / "m.pt", Tiny(TinyConfig(hidden=8)), TinyConfig(hidden=8))
    target = Tiny()
    before = target.fc.weight.clone()
    with pytest.raises(ck.CheckpointError, match=r"(?s)config.*different shapes.*fc.weight"):
        ck.load_into(target, path)
    assert torch.equal(target.fc.weight, before)

    class Other(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)

    with pytest.raises(ck.CheckpointError, match="made for Tiny"):
        ck.load_into(Other(), path)


def test_corrupted_truncated_and_foreign_files(tmp_path):
    path = ck.save_checkpoint(tmp_path / "m.pt", Tiny())
    good_sha = ck.sha256_file(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ck.CheckpointError, match="could not be read"):
        ck.load_checkpoint(path)
    with pytest.raises(ck.CheckpointError, match="corrupted"):
        ck.load_checkpoint(path, expected_sha256=good_sha)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ck.CheckpointError, match="not a DeepGen checkpoint"):
        ck.load_checkpoint(foreign)
    with pytest.raises(ck.CheckpointError, match="does not exist"):
        ck.load_checkpoint(tmp_path / "nope.pt")


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "file.bin"
    ck.atomic_write_bytes(target, b"old")

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        ck.atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"], "no temporary file left behind"


def test_shipped_manifest_entries_are_complete_and_verified():
    entries = ck.read_manifest()
    assert "classifier_mnist" in entries and "classifier_fashion_mnist" in entries
    total = 0
    for name, entry in entries.items():
        for key in (
            "file",
            "sha256",
            "bytes",
            "lesson",
            "command",
            "device",
            "wall_seconds",
            "quality",
        ):
            assert key in entry, f"{name} lacks {key}"
        path = ck.shipped_path(name)  # verifies sha256
        assert path.stat().st_size == entry["bytes"]
        total += entry["bytes"]
    assert total < 100e6, "keep all checkpoints together within about 100 MB (the project's limit)"


def test_unknown_shipped_name():
    with pytest.raises(ck.CheckpointError, match="Available"):
        ck.shipped_path("no_such_model")


def test_numpy_metadata_is_stored_plainly_and_loads_with_weights_only(tmp_path):
    # the review's data-loss case: a NumPy scalar in metadata made a file weights_only=True could
    # not load
    path = ck.save_checkpoint(tmp_path / "m.pt", Tiny(), TinyConfig(), {"loss": np.float32(0.5)})
    assert torch.load(path, weights_only=True)["metadata"] == {"loss": 0.5}


def test_refused_save_leaves_the_good_checkpoint_untouched(tmp_path):
    path = ck.save_checkpoint(tmp_path / "m.pt", Tiny())
    before = path.read_bytes()
    broken = Tiny()
    with torch.no_grad():
        broken.fc.weight.fill_(float("nan"))
    with pytest.raises(ck.CheckpointError, match="NaN or infinite.*unchanged"):
        ck.save_checkpoint(path, broken)
    with pytest.raises(TypeError, match=r"metadata\['cb'\]"):
        ck.save_checkpoint(path, Tiny(), metadata={"cb": lambda: 0})
    assert path.read_bytes() == before


def test_misspelt_shipped_name_suggests_the_closest():
    with pytest.raises(ck.CheckpointError, match="Did you mean 'classifier_mnist'"):
        ck.shipped_path("clasifier_mnist")


def test_loading_a_shipped_checkpoint_prints_no_warning():
    """torch 2.1-2.3 warn "TypedStorage is deprecated" on every safe load; learners must not
    see it."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ck.load_checkpoint(ck.shipped_path("classifier_mnist"))


def test_round_to_half_matches_what_a_half_checkpoint_stores(tmp_path):
    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.fill_(0.1)                       # 0.1 is not exact in float16
    path = tmp_path / "m.pt"
    ck.save_checkpoint(path, model, None, {}, half=True)
    loaded = torch.nn.Linear(3, 2)
    ck.load_into(loaded, path)
    ck.round_to_half(model)
    assert torch.equal(model.weight, loaded.weight) and model.weight[0, 0].item() != 0.1
