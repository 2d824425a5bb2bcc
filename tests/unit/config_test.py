"""Start-up checks a schema cannot express: typos with a "did you mean", data roots, revisions."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import yaml

from delta_v2a.cache import variant_key
from delta_v2a.config import (
    ConfigError,
    check_data_roots,
    check_keys,
    check_models,
    load_config,
    local_revision,
)
from delta_v2a.settings import ModelSpec

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
DEFAULTS = load_config(ROOT / "workflow/schemas/config.schema.yaml", ROOT / "config/config.yaml")
REV = "0123456789abcdef0123456789abcdef01234567"


def test_the_shipped_configs_have_no_unknown_keys():
    for name in ("config.yaml", "demo.yaml", "real.yaml"):
        check_keys(yaml.safe_load((ROOT / "config" / name).read_text()), SCHEMA)
    check_keys(yaml.safe_load((ROOT / ".test/config/config.yaml").read_text()), SCHEMA)


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"modles": {}}, "modles: unknown config key; did you mean 'models'?"),
        ({"sede": 1}, "did you mean 'seed'?"),
        (
            {"models": {"dtyp": "fp16"}},
            "models.dtyp: unknown config key; did you mean 'models.dtype'",
        ),
        ({"phase3": {"model": {"head": 2}}}, "did you mean 'phase3.model.heads'"),
        ({"zzzzzz": 1}, "zzzzzz: unknown config key (valid here: cache, data,"),
    ],
)
def test_a_typo_is_one_line_with_the_closest_key(config, words):
    with pytest.raises(ConfigError) as err:
        check_keys(config, SCHEMA)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_open_mappings_are_not_key_checked():
    # effect names and synonym lists are free-form keys (other checks name them)
    check_keys({"effects": {"image": {"sharpen": {"levels": {}}}}}, SCHEMA)
    check_keys(DEFAULTS, SCHEMA)


def _cfg(images, audio):
    return {"data": {"images": str(images), "audio": str(audio)}}


def test_missing_empty_and_file_roots_name_the_key_and_path(tmp_path):
    good = tmp_path / "audio/folk"
    good.mkdir(parents=True)
    (good / "a.wav").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"^data.images: data root '.*nowhere' does not exist"):
        check_data_roots(_cfg(tmp_path / "nowhere", tmp_path / "audio"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"^data.images: data root '.*empty' is empty"):
        check_data_roots(_cfg(tmp_path / "empty", tmp_path / "audio"))
    (tmp_path / "img/cat").mkdir(parents=True)
    (tmp_path / "img/cat/x.png").write_bytes(b"")
    (tmp_path / "file.wav").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"^data.audio: data root '.*file.wav' is not a folder"):
        check_data_roots(_cfg(tmp_path / "img", tmp_path / "file.wav"))


def test_unreadable_data_root_is_one_line_naming_it(tmp_path, monkeypatch):
    # tests run as root (chmod 000 still lists): the denial is simulated at os.scandir
    for sub in ("img/cat/x.png", "audio/folk/a.wav"):
        (tmp_path / sub).parent.mkdir(parents=True)
        (tmp_path / sub).write_bytes(b"")
    real = os.scandir

    def denied(path="."):
        if str(path).endswith("img"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", denied)
    with pytest.raises(ConfigError) as err:
        check_data_roots(_cfg(tmp_path / "img", tmp_path / "audio"))
    assert str(err.value).startswith(f"data.images: cannot list folder '{tmp_path}/img': ")
    assert "permission denied" in str(err.value) and "\n" not in str(err.value)


def test_data_inventory_holds_content_hashes(tmp_path, monkeypatch):
    import hashlib

    from delta_v2a.config import data_inventory

    monkeypatch.chdir(tmp_path)
    (tmp_path / "img/cat").mkdir(parents=True)
    (tmp_path / "img/cat/x.png").write_bytes(b"abc")
    (tmp_path / "audio/folk").mkdir(parents=True)
    (tmp_path / "audio/folk/a.wav").write_bytes(b"")
    media = check_data_roots(_cfg("img", "audio"))
    text = data_inventory(_cfg("img", "audio"), "image", media["image"])
    assert text == f"path\tsize\tsha256\nimg/cat/x.png\t3\t{hashlib.sha256(b'abc').hexdigest()}\n"
    assert list((tmp_path / ".snakemake/delta_v2a/file_hashes").glob("image-*.tsv"))


def test_data_roots_return_the_media_found(tmp_path):
    for rel in ("img/cat/x.png", "img/cat/sub/y.JPG", "aud/jazz/z.flac", "aud/jazz/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    media = check_data_roots(_cfg(tmp_path / "img", tmp_path / "aud"))
    assert [Path(f.path).name for f in media["image"]] == ["y.JPG", "x.png"]
    assert [f.category for f in media["audio"]] == ["jazz"]


def _downloaded(folder: Path, commit: str) -> Path:
    """What `hf download --local-dir` leaves: files + .cache/huggingface/download/*.metadata."""
    meta = folder / ".cache/huggingface/download/config.json.metadata"
    meta.parent.mkdir(parents=True)
    meta.write_text(f'{commit}\n"etag"\n1700000000.0\n')
    (folder / "config.json").write_text("{}")
    return folder


def test_local_revision_reads_what_hf_download_recorded(tmp_path):
    assert local_revision(_downloaded(tmp_path / "m", REV)) == REV
    assert local_revision(tmp_path) is None


def test_a_folder_holding_another_commit_than_the_pin_is_rejected(tmp_path):
    folder = str(_downloaded(tmp_path / "clip", "f" * 40))
    models = {"image": folder, "audio": "laion/larger_clap_music"}
    check_models({"models": models | {"revision": {"image": "f" * 40}}})
    check_models({"models": models | {"revision": {}}})  # unpinned: nothing to compare
    with pytest.raises(ConfigError, match=r"^models.revision.image: the config pins 0123"):
        check_models({"models": models | {"revision": {"image": REV}}})


def test_the_revision_enters_the_cache_key_only_when_pinned():
    model = ModelSpec("image", "org/model", None, "cpu", "fp32", True, 768)
    args = dict(modality="image", device_type="cpu", effect=None, effect_params={}, preroll_s=1.0)

    def key(revision):
        return variant_key(model=dataclasses.replace(model, revision=revision), **args)

    unpinned = key(None)
    pinned, other = key(REV), key("e" * 40)
    assert len({unpinned, pinned, other}) == 3


def test_parse_time_refusal_is_one_line_and_exit_1():
    import io

    from delta_v2a.config import one_line_refusal

    out = io.StringIO()
    with pytest.raises(SystemExit) as stop, one_line_refusal(out):
        raise ConfigError("data.images: data root 'x' does not exist")
    assert stop.value.code == 1
    assert out.getvalue() == "Error: data.images: data root 'x' does not exist\n"
    with pytest.raises(KeyError), one_line_refusal(out):  # anything else is not a refusal
        raise KeyError("bug")
