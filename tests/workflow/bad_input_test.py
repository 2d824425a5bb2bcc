"""Bad input through the real workflow: clear errors naming the file or key, nothing lost."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from workflow_utils import (
    assert_refused,
    planned_jobs,
    small_config,
    snakemake,
    snakemake_cmd,
    write_config,
    write_data,
)

pytestmark = pytest.mark.workflow
REPLACE = "--replace-workflow-config"
P0 = ["results/sensitivity_results.json", "results/linearity_results.json"]


def good_data(base: Path, images=None, audio=None) -> None:
    write_data(
        base,
        {"city": 2, "sea": 2} if images is None else images,
        {"folk": 2, "jazz": 2} if audio is None else audio,
        stem="ok ",
    )


def bad_data(base: Path) -> dict[str, str]:
    """One of each unusable file; returns relative path -> expected words of the reason."""
    img, aud = base / "data/images/city", base / "data/audio/folk"
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buf, "JPEG")
    (img / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (img / "text.png").write_text("this is not an image")
    (img / "empty.jpg").write_bytes(b"")
    Image.new("RGB", (1, 1)).save(img / "one pixel.png")
    (aud / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    sf.write(aud / "one_sample.wav", np.array([0.5], np.float32), 16000)
    sf.write(aud / "silence.flac", np.zeros(16000 * 11, np.float32), 16000)
    nan = np.full(16000 * 11, 0.1, np.float32)
    nan[100] = np.nan
    sf.write(aud / "nan.wav", nan, 16000, subtype="FLOAT")
    (img / ".DS_Store").write_bytes(b"\x00\x01junk")  # hidden: ignored, not bad
    (img / "notes.txt").write_text("other extensions are ignored")
    return {
        "data/images/city/truncated.jpg": "truncated",
        "data/images/city/text.png": "not an image",
        "data/images/city/empty.jpg": "empty file",
        "data/images/city/one pixel.png": "1×1",
        "data/audio/folk/broken.wav": "",
        "data/audio/folk/one_sample.wav": "1-sample",
        "data/audio/folk/silence.flac": "silence",
        "data/audio/folk/nan.wav": "NaN",
    }


@pytest.fixture
def models(tiny_clip_dir, tiny_clap_dir):
    return {"image": tiny_clip_dir, "audio": tiny_clap_dir}


def test_bad_files_stop_before_any_model_naming_each(tmp_path, models):
    good_data(tmp_path)
    bad = bad_data(tmp_path)
    # Over a lowered memory budget (3000² RGB needs ~78 MiB): a TIFF cannot be read reduced, so
    # it is named, with the key that raises it; a PNG is read in row strips and passes.
    Image.new("RGB", (3000, 3000)).save(tmp_path / "data/images/sea/large.tiff")
    Image.new("RGB", (3000, 3000), (9, 9, 9)).save(tmp_path / "data/images/sea/large.png")
    bad["data/images/sea/large.tiff"] = "raise preprocessing.image.decode_budget_mib to at least 78"
    cfg = small_config(models)
    cfg["preprocessing"]["image"] = {"decode_budget_mib": 64}
    config = write_config(tmp_path, cfg)
    proc = snakemake(tmp_path, REPLACE, "--keep-going", *P0, config=config, check=False)
    assert_refused(proc)
    logs = "".join(p.read_text() for p in (tmp_path / "logs/manifest").rglob("*.log"))
    for path, words in bad.items():
        assert path in logs, path
        line = next(ln for ln in logs.splitlines() if path in ln)
        assert words in line, line
    assert ".DS_Store" not in logs and "notes.txt" not in logs  # not media: never a stop
    assert "large.png" not in logs  # over the budget, read in strips inside it
    assert "on_bad_file: skip" in logs  # the message says how to go on
    assert not (tmp_path / "results/embeddings").exists()  # no model job ran
    assert not (tmp_path / "results/health").exists()


def test_skip_policy_lists_bad_files_and_goes_on(tmp_path, models):
    good_data(tmp_path)
    bad = bad_data(tmp_path)
    config = write_config(tmp_path, small_config(models, 1, on_bad_file="skip"))
    snakemake(tmp_path, REPLACE, *P0, "results/skipped_files.tsv", config=config)
    lines = (tmp_path / "results/skipped_files.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["path", "category", "modality", "reason"]
    assert {ln.split("\t")[0] for ln in lines[1:]} == set(bad) | {"data/images/city/notes.txt"}
    # Files no decoder reads: one warning line naming them (issue 36.3).
    logs = "".join(p.read_text() for p in (tmp_path / "logs/manifest").rglob("*.log"))
    warned = [ln for ln in logs.splitlines() if "not image files the decoders read" in ln]
    assert len(warned) == 1 and warned[0].endswith("data/images/city/notes.txt")
    records = json.loads((tmp_path / "results/image_deltas.json").read_text())
    assert {r["path"] for r in records} == {
        f"data/images/{c}/ok {i}.png" for c in ("city", "sea") for i in range(2)
    }


def test_empty_root_and_category_without_usable_files(tmp_path, models):
    good_data(tmp_path, images={"city": 2}, audio={"folk": 2, "jazz": 2})
    (tmp_path / "data/images/empty_cat").mkdir()
    (tmp_path / "data/images/bad_only").mkdir()
    (tmp_path / "data/images/bad_only/x.png").write_text("nope")
    config = write_config(tmp_path, small_config(models, 1, on_bad_file="skip"))
    snakemake(tmp_path, REPLACE, *P0, config=config)
    cross = json.loads((tmp_path / "results/cross_category_variance.json").read_text())
    image_rows = [r for r in cross["results"] if r["modality"] == "image"]
    assert all(r["variance"] is None and "at least 2" in r["reason"] for r in image_rows)
    # an empty data root is a clear error naming the key
    other = tmp_path / "other"
    (other / "data/images").mkdir(parents=True)
    good_data(other, images={}, audio={"folk": 2})
    proc = snakemake(
        other, REPLACE, *P0, config=write_config(other, small_config(models)), check=False
    )
    assert_refused(proc)
    # stopped at parse time, before any job is planned (tests/unit/config_test.py has the rest)
    assert "data.images: data root 'data/images' is empty" in proc.stdout + proc.stderr
    assert not (other / "logs/manifest").exists()


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ({"seed": "zero"}, "seed"),
        ({"on_bad_file": "ignore"}, "on_bad_file"),
        ({"models": {"batch_size": {"cpu": {"image": 0}}}}, "batch_size"),
        (
            {
                "effects": {
                    "image": {"sharpen": {"levels": {"low": {"amount": 1}, "high": {"amount": 2}}}}
                }
            },
            "effects.image.sharpen: unknown image effect 'sharpen'; allowed:",
        ),
        ({"intensities": ["low", "extreme", "high"]}, "effects.image.blur.levels: no level for"),
        ({"run_effects": {"audio": ["lpf", "flanger"]}}, "run_effects.audio: 'flanger'"),
        (
            {
                "effects": {
                    "image": {"blur": {"levels": {"low": {"sigma": 3.0}, "high": {"sigma": 1.0}}}}
                }
            },
            "effects.image.blur.high.sigma",
        ),
        (
            {
                "effects": {
                    "image": {"blur": {"levels": {"low": {"sigma": -1.0}, "high": {"sigma": 2.0}}}}
                }
            },
            "effects.image.blur.low.sigma",
        ),
        (
            {
                "effects": {
                    "audio": {
                        "lpf": {
                            "levels": {"low": {"cutoff_hz": 30000.0}, "high": {"cutoff_hz": 800.0}}
                        }
                    }
                }
            },
            "effects.audio.lpf.low.cutoff_hz",
        ),
        (
            {"effects": {"audio": {"lpf": {"fixed": {"order": 2.5}}}}},
            "effects.audio.lpf.low: lpf: order must be a positive whole number, got 2.5",
        ),
        (
            {"effects": {"audio": {"reverb": {"fixed": {"damping": 2.0}}}}},
            "effects.audio.reverb.low: reverb: damping must be in [0, 1], got 2.0",
        ),
        ({"models": {"image": "resources/models/missing-clip"}}, "models.image: local model"),
        ({"models": {"device": "tpu"}}, "device"),
    ],
    ids=[
        "type",
        "enum",
        "minimum",
        "unknown-effect",
        "missing-intensity",
        "unknown-run-effect",
        "non-monotone",
        "negative-sigma",
        "above-nyquist",
        "fractional-lpf-order",
        "reverb-damping-2",
        "missing-model-dir",
        "bad-device",
    ],
)
def test_bad_config_is_rejected_at_start_naming_the_key(tmp_path, models, override, words):
    good_data(tmp_path, images={"c": 1}, audio={"g": 1})
    config = write_config(tmp_path, small_config(models, **override))
    proc = snakemake(tmp_path, REPLACE, "--dry-run", config=config, check=False)
    assert_refused(proc)
    assert words in proc.stdout + proc.stderr


def test_model_problems_give_clear_messages(tmp_path, models):
    good_data(tmp_path, images={"c": 2}, audio={"g": 2})
    # the embedding size differs from what the config declares
    cfg = write_config(tmp_path, small_config(models, models={"dim": {"image": 512}}))
    proc = snakemake(
        tmp_path, REPLACE, "results/embeddings/image/original.npz", config=cfg, check=False
    )
    assert_refused(proc)
    assert (
        "models.dim.image: the config declares 512-d"
        in (tmp_path / "logs/embed/image/original.log").read_text()
    )
    # CUDA asked for where there is none
    if not _cuda():
        cfg = write_config(tmp_path, small_config(models, models={"device": "cuda"}))
        proc = snakemake(
            tmp_path, REPLACE, "results/embeddings/audio/original.npz", config=cfg, check=False
        )
        assert_refused(proc)
        assert "CUDA is not available" in (tmp_path / "logs/embed/audio/original.log").read_text()


def test_failed_health_check_stops_science_unless_allowed(tmp_path, models):
    good_data(tmp_path)
    strict = small_config(models, 1, models={"health": {"limit": -0.99}})
    proc = snakemake(
        tmp_path,
        REPLACE,
        "results/sensitivity_results.json",
        config=write_config(tmp_path, strict),
        check=False,
    )
    assert_refused(proc)
    log = (tmp_path / "logs/sensitivity.log").read_text()
    assert "model health check failed for" in log and "models.health.limit" in log
    health = json.loads((tmp_path / "results/health/audio.json").read_text())
    assert health["passed"] is False  # the figure is saved either way
    allowed = small_config(models, 1, models={"health": {"limit": -0.99, "allow_unhealthy": True}})
    snakemake(
        tmp_path,
        REPLACE,
        "results/sensitivity_results.json",
        config=write_config(tmp_path, allowed),
    )


def test_corrupt_store_fails_naming_the_file(tmp_path, models):
    good_data(tmp_path, images={"a": 2, "b": 2}, audio={"f": 2, "g": 2})
    cfg = small_config(models, 1, models={"health": {"allow_unhealthy": True}})
    # --forcerun plans what lies downstream too (Phase 3 reads Phase 0's norms), so the
    # parse-time size check needs 2 test files of the 4 songs
    cfg["phase3"]["split"] = {"val": 0.25, "test": 0.5}
    config = write_config(tmp_path, cfg)
    snakemake(tmp_path, REPLACE, *P0, config=config)
    store = tmp_path / "results/image_deltas.npz"
    store.write_bytes(store.read_bytes()[:1000])
    proc = snakemake(
        tmp_path, REPLACE, "--forcerun", "sensitivity", P0[0], config=config, check=False
    )
    assert_refused(proc)
    assert (
        "results/image_deltas.npz: cannot read array store"
        in (tmp_path / "logs/sensitivity.log").read_text()
    )
    # Issue 37.4: an artifact of an older layout, or a damaged one, is one line naming it and
    # what to do, in the job that reads it, never a KeyError or a traceback.
    snakemake(tmp_path, REPLACE, *P0, "--forcerun", "deltas", config=config)  # made again
    health = tmp_path / "results/health/audio.json"
    doc = json.loads(health.read_text())
    del doc["limit"]
    health.write_text(json.dumps(doc))
    proc = snakemake(
        tmp_path, REPLACE, P0[0], "--forcerun", "sensitivity", config=config, check=False
    )
    assert_refused(proc)
    text = (tmp_path / "logs/sensitivity.log").read_text()
    assert "Traceback" not in text
    assert "results/health/audio.json: model_health lacks ['limit']; delete it and rerun" in text
    table = tmp_path / "results/embeddings/audio/original.npz"
    table.write_bytes(table.read_bytes()[:-100])
    proc = snakemake(
        tmp_path, REPLACE, "results/audio_deltas.npz", "--forcerun", "deltas", config=config,
        check=False,
    )  # fmt: skip
    assert_refused(proc)
    text = (tmp_path / "logs/deltas/audio.log").read_text()
    assert "results/embeddings/audio/original.npz: cannot read array store" in text
    assert "delete it and rerun" in text and "Traceback" not in text


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _artifact_digests(base: Path) -> dict[str, str]:
    """Hash every JSON/TSV byte for byte and every array store by its arrays (a zip records
    write times, so .npz bytes differ between identical stores)."""
    out = {}
    for path in sorted((base / "results").rglob("*")):
        rel = str(path.relative_to(base))
        if any(s in rel for s in ("cache", "benchmarks", "embeddings")) or not path.is_file():
            continue
        if path.name.startswith("."):  # a killed writer's temporary file, never an artifact
            continue
        if rel.endswith(".inventory.tsv"):  # written at parse time, not by a job
            continue
        if path.suffix in (".json", ".tsv"):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.suffix in (".npz", ".npy"):
            with np.load(path, allow_pickle=False) as data:
                arrays = {"": data} if isinstance(data, np.ndarray) else data
                digest = hashlib.sha256()
                for key in sorted(arrays.files) if hasattr(arrays, "files") else [""]:
                    arr = arrays[key] if key else data
                    digest.update(key.encode() + arr.tobytes())
                out[rel] = digest.hexdigest()
    return out


def _final_npz(folder: Path) -> list[Path]:
    """The .npz files under their final names (storage.atomic_path writes hidden temps)."""
    return [p for p in folder.rglob("*.npz") if not p.name.startswith(".")]


def test_killed_run_resumes_and_equals_an_uninterrupted_one(tmp_path, models):
    """SIGKILL mid-run, --rerun-incomplete, and every artifact equals a clean run's; two clean
    runs are bit-identical (reproducibility)."""
    runs = {}
    for name in ("clean", "killed"):
        base = tmp_path / name
        good_data(base)
        cfg = write_config(
            base, small_config(models, 1, models={"health": {"allow_unhealthy": True}})
        )
        if name == "killed":
            cmd = snakemake_cmd(base, REPLACE, *P0, config=cfg)
            env = os.environ | {"HF_HUB_OFFLINE": "1"}
            proc = subprocess.Popen(
                cmd,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.time() + 300
            emb = base / "results/embeddings"
            while time.time() < deadline and len(_final_npz(emb)) < 3:
                time.sleep(0.2)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            assert not (base / P0[0]).exists(), "killed too late to test anything"
            # no half-written artifact is left under its final name (a killed writer leaves
            # its hidden temporary file, ".<name>.<random>.tmp.npz", and nothing else)
            for npz in _final_npz(emb):
                np.load(npz, allow_pickle=False).close()
            # a SIGKILLed Snakemake leaves its lock: the documented recovery is --unlock, then
            # --rerun-incomplete
            snakemake(base, REPLACE, "--unlock", config=cfg)
            snakemake(base, REPLACE, "--rerun-incomplete", *P0, config=cfg)
        else:
            snakemake(base, REPLACE, *P0, config=cfg)
        runs[name] = _artifact_digests(base)
    assert runs["clean"].keys() == runs["killed"].keys()
    different = [k for k in runs["clean"] if runs["clean"][k] != runs["killed"][k]]
    assert different == []
    assert (
        planned_jobs(
            snakemake(
                tmp_path / "killed",
                REPLACE,
                "--dry-run",
                *P0,
                config=tmp_path / "killed/config.yaml",
            )
        )
        == {}
    )
