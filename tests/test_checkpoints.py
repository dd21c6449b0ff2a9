"""Strict checkpoint loading, variant detection, garbage files, seeded random weights."""

from __future__ import annotations

import os
import pickle
import random
import zipfile

import pytest
import torch

from exporter.checkpoints.loading import (
    detect_variant,
    inspect_checkpoint,
    load_checkpoint,
    random_model,
    read_checkpoint,
    state_dict_digest,
)
from exporter.core.digests import sha256_file
from exporter.core.errors import CheckpointError
from exporter.core.variants import all_variants, resolve
from tests.fixtures import variant_params

ALL = [v.name for v in all_variants()]


@pytest.mark.parametrize("name", variant_params(ALL))
def test_loads_every_variant_from_official_format(random_checkpoint, name):
    path, source = random_checkpoint(name)
    model, loaded = load_checkpoint(resolve(name), path)
    assert loaded.kind == "checkpoint" and loaded.file_sha256 == sha256_file(path)
    # the weights that arrived in the model are exactly the ones that were saved
    assert state_dict_digest(model.state_dict()) == source.state_dict_sha256 == loaded.state_dict_sha256
    params = sum(p.numel() for p in model.parameters())
    assert params == resolve(name).parameters  # configs/ states the real count
    info = inspect_checkpoint(path)
    assert info.variant.name == name and info.problem is None and info.parameters == params


@pytest.mark.parametrize(
    "saved, requested",
    [
        ("sam2_hiera_tiny", "sam2.1_hiera_tiny"),
        ("sam2.1_hiera_tiny", "sam2_hiera_tiny"),
        ("sam2.1_hiera_small", "sam2.1_hiera_large"),
        ("sam2.1_hiera_base_plus", "sam2.1_hiera_tiny"),
        ("sam_vit_b", "sam_vit_l"),  # SAM 1's bare state dicts are told apart too
        ("sam_vit_b", "sam2.1_hiera_tiny"),
        ("sam2.1_hiera_tiny", "sam_vit_b"),
    ],
)
def test_wrong_variant_names_the_real_one(random_checkpoint, saved, requested):
    path, _ = random_checkpoint(saved)
    with pytest.raises(CheckpointError, match=f"is a {saved} checkpoint, not {requested}"):
        load_checkpoint(resolve(requested), path)


def test_partial_state_dict_is_refused_with_details(random_checkpoint, tmp_path):
    path, _ = random_checkpoint("tiny")
    sd = read_checkpoint(path)
    del sd["no_mem_embed"]
    sd["image_encoder.neck.convs.0.conv.bias"] = torch.zeros(7)
    torch.save({"model": sd}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match=r"1 missing \(e.g. no_mem_embed\).*1 shape mismatches"):
        load_checkpoint(resolve("tiny"), tmp_path / "partial.pt")


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


def _garbage(tmp_path, kind):
    path = tmp_path / f"{kind}.pt"
    if kind == "random-bytes":
        path.write_bytes(random.Random(1).randbytes(4096))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "code-pickle":
        path.write_bytes(pickle.dumps({"model": _RunsCode()}, protocol=2))
    elif kind == "other-zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("report/notes.txt", "not weights")
    elif kind == "not-a-dict":
        torch.save([torch.zeros(1)], path)
    elif kind == "missing":
        pass
    return path


@pytest.mark.parametrize(
    "kind, message",
    [
        ("random-bytes", "neither a zip archive nor a pickle"),
        ("empty", "empty file"),
        ("code-pickle", "would import posix.system and run code"),
        ("other-zip", "a zip archive, but not a PyTorch checkpoint"),
        ("not-a-dict", "not an official SAM checkpoint: expected a state dict"),
        ("missing", "no such file"),
    ],
)
def test_garbage_files_get_clear_errors(tmp_path, kind, message):
    path = _garbage(tmp_path, kind)
    with pytest.raises(CheckpointError, match=message) as info:
        read_checkpoint(path)
    assert "\n" not in str(info.value)


def test_truncated_checkpoint(random_checkpoint, tmp_path):
    path, _ = random_checkpoint("tiny")
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_checkpoint(tmp_path / "cut.pt")


def test_same_seed_same_weights_other_seed_differs():
    tiny = resolve("tiny")
    a = random_model(tiny, 5)[1].state_dict_sha256
    b = random_model(tiny, 5)[1].state_dict_sha256
    c = random_model(tiny, 6)[1].state_dict_sha256
    assert a == b != c


def test_random_model_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    random_model(resolve("tiny"), 0)
    assert torch.equal(torch.rand(3), expected)


def test_detect_variant_unknown_shapes():
    assert detect_variant({"foo": torch.zeros(1)}) is None
