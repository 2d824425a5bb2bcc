"""Real folders through the real workflow: odd names, bad content, changed and unreadable files,
and the import route (docs/methods.md section 8)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image
from workflow_utils import (
    ROOT,
    planned_jobs,
    small_config,
    small_run_configs,
    snakemake,
    snakemake_cmd,
    write_config,
    write_data,
)

pytestmark = pytest.mark.workflow
REPLACE = "--replace-workflow-config"
DELTAS = ["results/image_deltas.json", "results/audio_deltas.json", "results/skipped_files.tsv"]


@pytest.fixture
def models(tiny_clip_dir, tiny_clap_dir):
    return {"image": tiny_clip_dir, "audio": tiny_clap_dir}


def _short_png(w: int, h: int, rows: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    raw = b"".join(b"\x00" + bytes(3 * w) for _ in range(rows))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))


#: Names a POSIX file system allows (relative to the data root) that a TSV line, a log line, a
#: shell or Snakemake's wildcards could split or misread: each must go through exactly.
ODD_NAMES = {
    "images/city/img_0.png": b'new\nline -"q" {x}.png',
    "images/sea/img_0.png": b"-leading back\\slash 'q'.png",
    "images/sea/img_1.png": b"caf\xe9\ttab \xf0\x9f\x8e\xb5.webp",  # Latin-1, not UTF-8
    "audio/folk/clip_0.flac": b"-\xff\nodd {genre}.ogg",
    "audio/jazz/clip_1.flac": "emoji \U0001f3b5 'q'.flac".encode(),
}


def odd_folder(base: Path, tiny_model_root: Path) -> tuple[set[bytes], dict[str, str]]:
    """The .test/ run's data with odd names (one .webp and one .ogg among them), unusable files
    and a notes file. Returns (the usable files' paths as bytes, shown path -> reason words)."""
    shutil.copytree(ROOT / ".test/config", base / "config")
    shutil.copytree(ROOT / ".test/data", base / "data")
    overlay = {"models": {"image": str(tiny_model_root / "tiny-clip"),
                          "audio": str(tiny_model_root / "tiny-clap"), "device": "cpu"},
               "on_bad_file": "skip"}  # fmt: skip
    (base / "config/tiny-models.yaml").write_text(json.dumps(overlay))
    data = base / "data"
    for old, raw in ODD_NAMES.items():
        src, dst = data / old, os.fsencode(data / old).rsplit(b"/", 1)[0] + b"/" + raw
        if raw.endswith(b".webp"):
            Image.open(src).save(os.fsdecode(dst), "WEBP", lossless=True)
        elif raw.endswith(b".ogg"):
            x, sr = sf.read(src)
            sf.write(dst, x, sr, format="OGG", subtype="VORBIS")  # bytes: any name
        else:
            shutil.copy(src, os.fsdecode(dst))
        src.unlink()
    good = {os.fsencode(p.relative_to(base)) for p in data.rglob("*") if p.is_file()}
    img, aud = data / "images/city", data / "audio/folk"
    (img / "rows.png").write_bytes(_short_png(1500, 1500, 10))
    (img / "huge.png").write_bytes(_short_png(15000, 15000, 4))
    frames = [Image.new("RGB", (32, 32), (60 * i, 0, 0)) for i in range(3)]
    frames[0].save(img / "anim.gif", "GIF", save_all=True, append_images=frames[1:])
    (aud / "tag.mp3").write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x14" + bytes(20))
    sr = 16_000
    x = (0.1 * np.sin(np.arange(40 * sr) * 0.05)).astype(np.float32)
    x[20 * sr] = np.nan  # inside the centred window
    sf.write(aud / "nan early.wav", x, sr, subtype="FLOAT")
    (img / "notes.txt").write_text("not a photo")
    return good, {
        "data/images/city/rows.png": "truncated PNG",
        "data/images/city/huge.png": "truncated PNG",
        "data/images/city/anim.gif": "animated GIF (3 frames)",
        "data/audio/folk/tag.mp3": "no audio frames: the file holds only an ID3 tag",
        "data/audio/folk/nan early.wav": "NaN",
        "data/images/city/notes.txt": "extension '.txt': not an image format",
    }


def test_any_name_goes_through_manifest_extraction_and_tables(tmp_path, tiny_model_root):
    """Issue 37.1: names with a newline, a tab, quotes, braces, a leading dash, non-UTF-8 bytes
    and emoji run to the end (`all`: manifest, extraction, Phase 0/1/3, tables, report), each
    carried exactly; unusable files are skipped with their reasons; and a second run plans
    nothing (the inventory of such names is stable)."""
    from delta_v2a.extract import read_manifest
    from delta_v2a.inventory import read_inventory
    from delta_v2a.media import path_from_shown

    good, expected = odd_folder(tmp_path, tiny_model_root)
    run = snakemake(tmp_path, *small_run_configs(tmp_path))
    assert "Traceback" not in run.stdout + run.stderr
    skipped = pd.read_csv(tmp_path / "results/skipped_files.tsv", sep="\t", dtype=str)
    reasons = dict(zip(skipped["path"], skipped["reason"], strict=True))
    assert sorted(reasons) == sorted(expected)
    for path, words in expected.items():
        assert words in reasons[path], (path, reasons[path])
    manifests = [read_manifest(tmp_path / f"results/manifest/{m}.tsv") for m in ("image", "audio")]
    assert {os.fsencode(f.path) for m in manifests for f in m} == good
    for modality in ("image", "audio"):  # the seed JSON: json.loads gives the exact names
        records = json.loads((tmp_path / f"results/{modality}_deltas.json").read_bytes())
        assert {os.fsencode(r["path"]) for r in records} == {
            p for p in good if p.startswith(f"data/{modality}".encode())
        }
    split = json.loads((tmp_path / "results/split.json").read_text(encoding="utf-8"))
    assert {os.fsencode(p) for files in split["files"].values() for p in files} == {
        p for p in good if p.startswith(b"data/audio")
    }
    inventories = {}  # the inventory: one line per file, read back exactly
    for modality in ("image", "audio"):
        inventories |= read_inventory(tmp_path / f"results/manifest/{modality}.inventory.tsv")
    shown = {os.fsencode(path_from_shown(p)) for p in inventories}
    assert good <= shown and all(any(p.endswith(n) for p in shown) for n in ODD_NAMES.values())
    for table in (tmp_path / "results/tables").glob("*.tsv"):
        table.read_text(encoding="utf-8")  # user-facing tables stay UTF-8
    for log in (tmp_path / "logs").rglob("*.log"):
        log.read_text(encoding="utf-8")
    assert (tmp_path / "results/report/front.html").is_file()
    again = snakemake(tmp_path, "--dry-run", *small_run_configs(tmp_path))
    assert planned_jobs(again) == {}
    # on_bad_file: error names every unusable file, before any model (the notes file is not one).
    strict = write_config(tmp_path, {"on_bad_file": "error"}, "strict.yaml")
    configs = [*small_run_configs(tmp_path), str(strict)]
    proc = snakemake(tmp_path, "--forceall", "--keep-going", *DELTAS, *configs, check=False)
    assert proc.returncode != 0
    for path in expected:
        assert (path in proc.stdout + proc.stderr) == (not path.endswith("notes.txt")), path


def test_bytes_rewritten_with_mtime_put_back_are_vetted_again(tmp_path, models):
    import hashlib

    write_data(tmp_path, {"city": 2}, {"folk": 1})
    config = write_config(tmp_path, small_config(models))
    snakemake(tmp_path, REPLACE, "results/manifest/image.tsv", config=config)
    photo = tmp_path / "data/images/city/img 0.png"
    st = photo.stat()
    photo.write_bytes((tmp_path / "data/images/city/img 1.png").read_bytes())
    os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back: ctime still moved
    # the inventory holds content hashes (docs/methods.md §2.1): the file is vetted again
    # before any embedding, and the manifest holds the new bytes' hash
    snakemake(tmp_path, REPLACE, "results/embeddings/image/original.npz", config=config)
    manifest = (tmp_path / "results/manifest/image.tsv").read_text()
    assert hashlib.sha256(photo.read_bytes()).hexdigest() in manifest


def _copy_of_package(where: Path, *, hijack: bool) -> Path:
    """A second copy of delta_v2a, as an install from another checkout would be."""
    shutil.copytree(ROOT / "src/delta_v2a", where / "delta_v2a")
    (where / "delta_v2a/MARKER").write_text("the other copy")
    if hijack:  # an environment whose import hooks put the installed copy first
        (where / "sitecustomize.py").write_text(f"import sys\nsys.path.insert(0, {str(where)!r})\n")
    return where


def test_workflow_runs_its_own_code_not_an_installed_copy(tmp_path, models):
    write_data(tmp_path, {"city": 1}, {"folk": 1})
    config = write_config(tmp_path, small_config(models))
    other = _copy_of_package(tmp_path / "site", hijack=False)
    env = {"PYTHONPATH": str(other)}
    proc = _run(tmp_path, env, "results/manifest/image.tsv", config=config)
    assert proc.returncode == 0, proc.stderr
    log = "".join(p.read_text() for p in (tmp_path / "logs/manifest/image").glob("*.log"))
    assert "imported delta_v2a from" not in log
    # The copy wins only where something forces it first: the job refuses, naming both.
    hijacked = _copy_of_package(tmp_path / "hijack", hijack=True)
    proc = _run(
        tmp_path,
        {"PYTHONPATH": str(hijacked)},
        "--forceall",
        "results/manifest/image.tsv",
        config=config,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"this job imported delta_v2a from {hijacked / 'delta_v2a'}" in text
    assert f"not the workflow's own {ROOT / 'src/delta_v2a'}" in text


def _run(base: Path, extra_env: dict, *args: str, config: Path):
    cmd = snakemake_cmd(base, REPLACE, *args, config=config)
    env = os.environ | {"HF_HUB_OFFLINE": "1", **extra_env}
    env["PATH"] = str(Path(cmd[0]).parent) + os.pathsep + env.get("PATH", "")
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


# Tests run as root, who reads everything, and the interpreter may live where an unprivileged
# user cannot run it; so the permission failures are injected into every process of the run
# (Snakemake itself and each job) by a sitecustomize on PYTHONPATH: open() and os.access()
# refuse paths containing "locked", os.scandir() refuses folders named "locked_dir".
DENY = """
import builtins, io, os
_open, _access, _scandir = builtins.open, os.access, os.scandir


def _hit(path, word):
    try:
        return word in os.fsdecode(path)
    except TypeError:
        return False


def open(file, *args, **kwargs):
    if not isinstance(file, int) and _hit(file, "locked"):
        raise PermissionError(13, "Permission denied", os.fsdecode(file))
    return _open(file, *args, **kwargs)


def access(path, mode, **kwargs):
    return False if _hit(path, "locked") else _access(path, mode, **kwargs)


def scandir(path="."):
    if _hit(path, "locked_dir"):
        raise PermissionError(13, "Permission denied", os.fsdecode(path))
    return _scandir(path)


builtins.open = io.open = open
os.access, os.scandir = access, scandir
"""


def test_unreadable_file_skipped_and_unreadable_folder_named(tmp_path, models):
    write_data(tmp_path, {"city": 2}, {"folk": 2})
    shutil.copy(tmp_path / "data/images/city/img 0.png", tmp_path / "data/images/city/locked.png")
    (tmp_path / "deny").mkdir()
    (tmp_path / "deny/sitecustomize.py").write_text(DENY)
    env = {"PYTHONPATH": str(tmp_path / "deny")}
    config = write_config(tmp_path, small_config(models, 1, on_bad_file="skip"))
    proc = _run(tmp_path, env, *DELTAS, config=config)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    skipped = pd.read_csv(tmp_path / "results/skipped_files.tsv", sep="\t", dtype=str)
    assert skipped.to_dict("records") == [
        {
            "path": "data/images/city/locked.png",
            "category": "city",
            "modality": "image",
            "reason": "cannot read file: Permission denied",
        }
    ]
    image = json.loads((tmp_path / "results/image_deltas.json").read_text())
    assert {Path(r["path"]).name for r in image} == {"img 0.png", "img 1.png"}
    (tmp_path / "data/audio/folk").rename(tmp_path / "data/audio/locked_dir")
    proc = _run(tmp_path, env, "--dry-run", *DELTAS, config=config)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert (
        "data.audio: cannot list folder 'data/audio/locked_dir': permission denied; give the "
        "workflow's user read and execute permission on it" in text
    )
    assert "Traceback" not in text and "PermissionError" not in text
