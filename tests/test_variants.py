"""Variant registry (configs/*.yaml) and checkpoints.lock parsing."""

from __future__ import annotations

import re

import pytest

from exporter.checkpoints.lock import LockEntry, pin, read_lock, render_lock, write_lock
from exporter.core.errors import ConfigError, LockError
from exporter.core.variants import CONFIGS_ENV, all_variants, configs_dir, resolve

FULL_NAMES = [
    f"{fam}_hiera_{size}" for fam in ("sam2", "sam2.1") for size in ("tiny", "small", "base_plus", "large")
] + [f"sam_vit_{size}" for size in "blh"]


def test_every_variant_is_declared():
    assert sorted(v.name for v in all_variants()) == sorted(FULL_NAMES)


@pytest.mark.parametrize("alias", ["tiny", "small", "base_plus", "large"])
def test_aliases_mean_sam21(alias):
    assert resolve(alias).name == f"sam2.1_hiera_{alias}"


def test_unknown_variant_lists_choices():
    with pytest.raises(ConfigError, match="unknown variant 'huge'.*sam2.1_hiera_tiny.*tiny"):
        resolve("huge")


@pytest.mark.parametrize("name", FULL_NAMES)
def test_config_fields(name):
    v = resolve(name)
    assert v.source == configs_dir() / f"{name}.yaml"
    assert v.image_size == 1024 and v.opset >= 17
    # the feature shapes follow from the image size: strides 16, 4 and 8 (SAM 1: 16 only)
    expected = {"image_embeddings": (256, 64, 64)}
    if not v.is_sam1:
        expected = {
            "image_embed": (256, 64, 64),
            "high_res_feats_0": (32, 256, 256),
            "high_res_feats_1": (64, 128, 128),
        }
    assert v.features == expected
    for precision in ("fp32", "fp16", "int8"):
        gates = v.parity[precision]
        assert 0 < gates["mask_iou_min"] <= 1 and gates["max_flips_outside_band"] == 0
    assert v.parity["fp32"]["mask_iou_min"] >= 0.9999
    assert set(v.quantization) == {"fp16", "int8"}


def test_bad_config_is_reported_with_its_file(tmp_path, monkeypatch):
    (tmp_path / "broken.yaml").write_text("name: broken\nfamily: sam2\n")
    monkeypatch.setenv(CONFIGS_ENV, str(tmp_path))
    with pytest.raises(ConfigError, match=r"broken.yaml: missing key\(s\) size"):
        resolve("broken")


def _configs_with(folder, tiny_config: dict):
    """A configs folder: the repository's defaults.yaml and this tiny config."""
    import shutil

    import yaml

    folder.mkdir()
    shutil.copy(configs_dir() / "defaults.yaml", folder / "defaults.yaml")
    (folder / "sam2.1_hiera_tiny.yaml").write_text(yaml.safe_dump(tiny_config))
    return folder


def test_variant_files_override_the_defaults_key_by_key(tmp_path, monkeypatch):
    """A variant file holds only what differs: nested keys merge over defaults.yaml, the rest is
    inherited, and a key the defaults do not have (a typo) is refused with its dotted path."""
    import yaml

    tiny = resolve("sam2.1_hiera_tiny")
    config = yaml.safe_load((configs_dir() / "sam2.1_hiera_tiny.yaml").read_text())
    monkeypatch.setenv(
        CONFIGS_ENV, str(_configs_with(tmp_path / "a", {**config, "parity": {"int8": {"mask_iou_min": 0.5}}}))
    )
    merged = resolve("tiny")
    assert merged.parity["int8"]["mask_iou_min"] == 0.5
    assert {k: v for k, v in merged.parity["int8"].items() if k != "mask_iou_min"} == {
        k: v for k, v in tiny.parity["int8"].items() if k != "mask_iou_min"
    }
    assert merged.parity["fp32"] == tiny.parity["fp32"] and merged.quantization == tiny.quantization
    monkeypatch.setenv(
        CONFIGS_ENV, str(_configs_with(tmp_path / "b", {**config, "parity": {"int8": {"mask_iou_mni": 0.5}}}))
    )
    with pytest.raises(ConfigError, match=r"unknown key parity\.int8\.mask_iou_mni"):
        resolve("tiny")


def test_large_keeps_its_own_float_steps():
    """What differs per variant is what the variant files hold."""
    steps = {name: resolve(name).quantization["int8"]["encoder"]["float_steps"] for name in ("tiny", "large")}
    assert steps["tiny"] != steps["large"]
    assert resolve("large").parity == resolve("tiny").parity


def test_repo_lock_has_every_variant_with_official_urls():
    lock = read_lock()
    for v in all_variants():
        entry = lock[v.checkpoint]
        if v.is_sam1:  # the segment-anything README's files: sam_vit_b_01ec64.pth, ...
            assert re.fullmatch(rf"{v.name}_[0-9a-f]{{6}}\.pth", entry.filename), entry.filename
            assert entry.url == f"https://dl.fbaipublicfiles.com/segment_anything/{entry.filename}"
        else:
            assert entry.filename == f"{v.name}.pt"
            assert entry.url.startswith("https://dl.fbaipublicfiles.com/segment_anything_2/")
            assert entry.url.endswith("/" + entry.filename)
        # unknown digests are left empty rather than guessed
        assert entry.pinned == bool(entry.sha256) and entry.bytes >= 0


def test_lock_round_trip_and_pin(tmp_path):
    path = tmp_path / "checkpoints.lock"
    entries = {"sam2.1_hiera_tiny": LockEntry("sam2.1_hiera_tiny", "https://x/a.pt", "a.pt")}
    write_lock(entries, path)
    assert read_lock(path) == entries
    pinned = pin("sam2.1_hiera_tiny", 123, "ab" * 32, path)
    assert read_lock(path)["sam2.1_hiera_tiny"] == pinned
    assert pinned.pinned and pinned.bytes == 123
    assert render_lock(read_lock(path)) == path.read_text()  # canonical form is stable


@pytest.mark.parametrize(
    "text, message",
    [
        ("[a]\nurl = 'u'\n", "lacks filename, bytes, sha256"),
        ("[a]\nurl='u'\nfilename='f'\nbytes=-1\nsha256=''\n", "non-negative"),
        ("[a]\nurl='u'\nfilename='f'\nbytes=1\nsha256='xyz'\n", "64 hex digits"),
        ("[a]\nurl='u'\nfilename='d/f'\nbytes=1\nsha256=''\n", "bare file name"),
        ("[a\n", "not valid TOML"),
        ("a = 1\n", "must be a table"),
    ],
)
def test_malformed_lock(tmp_path, text, message):
    path = tmp_path / "bad.lock"
    path.write_text(text)
    with pytest.raises(LockError, match=message):
        read_lock(path)


def test_missing_lock(tmp_path):
    with pytest.raises(LockError, match="lock file not found"):
        read_lock(tmp_path / "none.lock")
