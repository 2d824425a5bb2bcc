"""The data inventory: content hashes cached per file state, and the inventory they make."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading

import pytest

from delta_v2a import inventory as inv
from delta_v2a.media import MediaFile


def _files(tmp_path, n=3):
    paths = []
    for i in range(n):
        p = tmp_path / "data" / "cat" / f"f{i}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(bytes([i]) * (10 + i))
        paths.append(str(p))
    return paths


def _cached_paths(cache) -> set[str]:
    return {json.loads(key.split("\t")[0]) for key in inv.read_cache(cache)}


def _count_reads(monkeypatch):
    """How many files content_hashes reads (the cache's whole point is to read none)."""
    calls = []
    real = inv.sha256_file
    lock = threading.Lock()

    def counting(path):
        with lock:
            calls.append(path)
        return real(path)

    monkeypatch.setattr(inv, "sha256_file", counting)
    return calls


def test_hashes_are_the_sha256_of_the_bytes(tmp_path):
    paths = _files(tmp_path)
    states, hashed = inv.content_hashes(paths, tmp_path / "cache.tsv")
    want = [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths]
    assert [h for _, h in states] == want
    assert [s for s, _ in states] == [10, 11, 12]
    assert hashed == 3


def test_warm_cache_reads_no_file_and_does_not_rewrite_itself(tmp_path, monkeypatch):
    paths, cache = _files(tmp_path), tmp_path / "cache.tsv"
    first, _ = inv.content_hashes(paths, cache)
    stamp = cache.stat().st_mtime_ns
    reads = _count_reads(monkeypatch)
    again, hashed = inv.content_hashes(paths, cache)
    assert again == first and hashed == 0 and reads == []
    assert cache.stat().st_mtime_ns == stamp  # unchanged entries: no write (no parse races)


def test_touch_is_a_miss_that_finds_the_same_hash(tmp_path, monkeypatch):
    paths, cache = _files(tmp_path), tmp_path / "cache.tsv"
    first, _ = inv.content_hashes(paths, cache)
    st = os.stat(paths[1])
    os.utime(paths[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    reads = _count_reads(monkeypatch)
    again, hashed = inv.content_hashes(paths, cache)
    assert reads == [paths[1]] and hashed == 1
    assert again == first  # same bytes: same inventory


def test_changed_bytes_with_size_and_mtime_restored_are_detected(tmp_path):
    # `touch -r` / `cp -p` can put mtime back; ctime (in the key) always moves on a write
    paths, cache = _files(tmp_path), tmp_path / "cache.tsv"
    first, _ = inv.content_hashes(paths, cache)
    st = os.stat(paths[0])
    with open(paths[0], "r+b") as fh:
        fh.write(b"\xff")  # same size
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns))
    again, hashed = inv.content_hashes(paths, cache)
    assert hashed == 1
    assert (
        again[0] != first[0]
        and again[0][1] == hashlib.sha256(open(paths[0], "rb").read()).hexdigest()
    )
    assert again[1:] == first[1:]


def test_cache_holds_only_this_walk_and_survives_damage(tmp_path):
    paths, cache = _files(tmp_path), tmp_path / "cache.tsv"
    inv.content_hashes(paths, cache)
    inv.content_hashes(paths[:2], cache)
    assert _cached_paths(cache) == set(paths[:2])
    cache.write_text(cache.read_text()[:-30], encoding="utf-8")  # a cut last line
    assert len(inv.read_cache(cache)) == 1  # the damaged line is a miss, never a wrong hash
    cache.write_text("something else\n", encoding="utf-8")
    assert inv.read_cache(cache) == {}


def test_names_that_are_not_utf8_or_hold_tabs_round_trip(tmp_path):
    odd = os.fsdecode(os.fsencode(str(tmp_path)) + b"/a\tb\xff.png")
    with open(odd, "wb") as fh:
        fh.write(b"x")
    cache = tmp_path / "cache.tsv"
    first, _ = inv.content_hashes([odd], cache)
    assert inv.content_hashes([odd], cache) == (first, 0)


def test_unreadable_file_is_marked_and_never_cached(tmp_path, monkeypatch):
    # tests run as root, where chmod 000 still reads: the denial is simulated at open()
    paths, cache = _files(tmp_path, 2), tmp_path / "cache.tsv"
    real_open = open

    def denied(file, *args, **kwargs):
        if file == paths[0]:
            raise PermissionError(13, "Permission denied")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", denied)
    states, _ = inv.content_hashes(paths, cache)
    assert states[0] == (10, inv.UNREADABLE) and len(states[1][1]) == 64
    assert _cached_paths(cache) == {paths[1]}  # read again once allowed


def test_file_in_an_unsearchable_folder_is_one_line_naming_it(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(inv.os, "stat", denied)
    with pytest.raises(inv.UnreadableFileError) as err:
        inv.content_hashes(["data/x.png"], None)
    assert err.value.strerror == "data/x.png: permission denied (cannot stat the data file)"


def test_cache_file_is_per_root_and_modality(tmp_path):
    a = inv.cache_path(tmp_path / "a", "image", tmp_path)
    assert a != inv.cache_path(tmp_path / "b", "image", tmp_path)
    assert a != inv.cache_path(tmp_path / "a", "audio", tmp_path)
    assert a == inv.cache_path(tmp_path / "a", "image", tmp_path)


def test_inventory_changes_exactly_when_content_or_set_changes(tmp_path):
    paths = _files(tmp_path)
    files = [MediaFile(p, "cat", "image") for p in paths]
    cache = tmp_path / "cache.tsv"

    def text(fs):
        return inv.media_inventory(fs, inv.content_hashes([f.path for f in fs], cache)[0])

    first = text(files)
    assert first.splitlines()[0] == "path\tsize\tsha256" and len(first.splitlines()) == 4
    os.utime(paths[0], ns=(1, 2))  # touched: same text, same digest
    assert text(files) == first
    assert inv.inventory_digest(text(files)) == inv.inventory_digest(first)
    with open(paths[0], "ab") as fh:
        fh.write(b"!")
    changed = text(files)
    assert changed != first and inv.inventory_digest(changed) != inv.inventory_digest(first)
    assert len(text(files[:2]).splitlines()) == 3
    path = tmp_path / "inv.tsv"
    path.write_text(changed, encoding="utf-8")
    assert (
        inv.read_inventory(path)[paths[0]]
        == hashlib.sha256(open(paths[0], "rb").read()).hexdigest()
    )
    path.write_text("path\tsize\tmtime_ns\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not an inventory"):
        inv.read_inventory(path)


def _vetting(tmp_path):
    """A data root, its inventory file and the manifest job's settings, as the workflow has them."""
    from PIL import Image

    from delta_v2a.settings import ManifestSettings

    root = tmp_path / "img"
    (root / "cat").mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (32, 32), (100 * i, 50, 0)).save(root / "cat" / f"{i}.png")
    inventory = tmp_path / "image.inventory.tsv"
    inventory.write_text(inv.inventory_of(root, "image"), encoding="utf-8")
    digest = inv.inventory_digest(inventory.read_text(encoding="utf-8"))
    settings = ManifestSettings("image", str(root), "data.images", "error", 1.0, 0.0, "t", 640)
    return root, inventory, digest, settings


def _run_manifest(tmp_path, inventory, digest, settings):
    from delta_v2a.jobs.common import Paths
    from delta_v2a.jobs.manifest import run_manifest

    vetted = tmp_path / "vetted" / f"image.{digest}.tsv"
    run_manifest(
        inputs=Paths(inventory=str(inventory)),
        outputs=Paths(
            manifest=str(vetted), skipped=str(tmp_path / "vetted" / f"image_skipped.{digest}.tsv")
        ),
        settings=settings,
        threads=1,
    )
    return vetted


def test_manifest_job_vets_exactly_its_inventory_state(tmp_path):
    from delta_v2a.extract import read_manifest
    from delta_v2a.jobs.common import PipelineError

    root, inventory, digest, settings = _vetting(tmp_path)
    vetted = _run_manifest(tmp_path, inventory, digest, settings)
    expected = inv.read_inventory(inventory)
    assert {f.path: f.sha256 for f in read_manifest(vetted)} == expected
    with pytest.raises(PipelineError, match="image.inventory.tsv: the data changed after"):
        _run_manifest(tmp_path, inventory, "0" * 16, settings)  # a name that is not its state
    (root / "cat/0.png").write_bytes((root / "cat/1.png").read_bytes())  # rewritten since
    with pytest.raises(PipelineError, match=r"cat/0\.png: the data changed after the workflow"):
        _run_manifest(tmp_path, inventory, digest, settings)
    (root / "cat/2.png").write_bytes((root / "cat/1.png").read_bytes())  # added since
    with pytest.raises(PipelineError, match=r"cat/2\.png: the data changed after the workflow"):
        _run_manifest(tmp_path, inventory, digest, settings)


def test_manifest_current_copies_the_state_and_drops_earlier_ones(tmp_path):
    from delta_v2a.jobs.common import Paths
    from delta_v2a.jobs.manifest import run_manifest_current

    _, inventory, digest, settings = _vetting(tmp_path)
    vetted = _run_manifest(tmp_path, inventory, digest, settings)
    old = vetted.parent / "image.00000000000000aa.tsv"
    old.write_text("an earlier state\n", encoding="utf-8")
    audio = vetted.parent / "audio.00000000000000aa.tsv"
    audio.write_text("the other modality's\n", encoding="utf-8")
    skipped = vetted.parent / f"image_skipped.{digest}.tsv"
    out = tmp_path / "current"
    run_manifest_current(
        inputs=Paths(manifest=str(vetted), skipped=str(skipped)),
        outputs=Paths(manifest=str(out / "image.tsv"), skipped=str(out / "image_skipped.tsv")),
    )
    assert (out / "image.tsv").read_bytes() == vetted.read_bytes()
    assert (out / "image_skipped.tsv").read_bytes() == skipped.read_bytes()
    assert not old.exists() and audio.exists() and vetted.exists() and skipped.exists()


def test_manifest_job_carries_any_name_and_lists_other_files(tmp_path):
    """Issues 37.1 and 36.3 through the manifest job: names with a newline, a tab, quotes, a
    leading dash, bytes that are not UTF-8 and emoji are vetted and read back exactly; a
    notes file is one warning and one skipped row, never a stop."""
    from PIL import Image

    from delta_v2a.extract import read_manifest
    from delta_v2a.settings import ManifestSettings

    root = tmp_path / "img"
    (root / "cat").mkdir(parents=True)
    names = [b"new\nline.png", b'-"q" \t{x}.png', b"caf\xe9 \xf0\x9f\x8e\xb5.webp", b"ok.png"]
    for i, raw in enumerate(names):
        path = os.fsencode(root / "cat") + b"/" + raw
        Image.new("RGB", (32, 32), (60 * i, 50, 0)).save(os.fsdecode(path), "PNG")
    (root / "cat" / "notes.txt").write_text("not an image")
    inventory = tmp_path / "image.inventory.tsv"
    inventory.write_text(inv.inventory_of(root, "image"), encoding="utf-8")
    assert len(inventory.read_text(encoding="utf-8").splitlines()) == 1 + len(names)
    digest = inv.inventory_digest(inventory.read_text(encoding="utf-8"))
    settings = ManifestSettings("image", str(root), "data.images", "error", 1.0, 0.0, "t", 640)
    vetted = _run_manifest(tmp_path, inventory, digest, settings)
    files = read_manifest(vetted)
    assert sorted(os.fsencode(os.path.basename(f.path)) for f in files) == sorted(names)
    import pandas as pd

    skipped = pd.read_csv(vetted.parent / f"image_skipped.{digest}.tsv", sep="\t", dtype=str)
    assert skipped.to_dict("records") == [
        {
            "path": f"{root}/cat/notes.txt",
            "category": "cat",
            "modality": "image",
            "reason": "extension '.txt': not an image format the installed decoders read",
        }
    ]


def test_unexpected_error_while_vetting_names_the_file_and_skip_goes_on(tmp_path, monkeypatch):
    """Issue 37.2: an exception no decoder check foresaw is that file's reason."""
    import delta_v2a.media.vetting as vetting
    from delta_v2a.extract import read_manifest
    from delta_v2a.jobs.common import PipelineError

    root, inventory, digest, settings = _vetting(tmp_path)
    real = vetting.load_image_hashed

    def boom(path, *a, **k):
        if path.endswith("0.png"):
            raise KeyError("a decoder bug")
        return real(path, *a, **k)

    monkeypatch.setattr(vetting, "load_image_hashed", boom)
    with pytest.raises(PipelineError) as err:
        _run_manifest(tmp_path, inventory, digest, settings)
    assert "cat/0.png: unexpected error while decoding (KeyError: 'a decoder bug')" in str(
        err.value
    )
    skip = dataclasses.replace(settings, on_bad_file="skip")
    vetted = _run_manifest(tmp_path, inventory, digest, skip)
    assert [os.path.basename(f.path) for f in read_manifest(vetted)] == ["1.png"]
