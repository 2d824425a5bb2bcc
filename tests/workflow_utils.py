"""Helpers for tests that run the real `snakemake` on a temporary project."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml
from PIL import Image

from delta_v2a.config import load_config

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
VENV = Path(sys.executable).parents[1]
#: What a copy of the repository leaves out: made or linked in its place by whoever copies it.
NOT_COPIED = (".git", ".venv", "results", "logs", ".snakemake", "runs", "resources",
              "__pycache__", ".pytest_cache", ".ruff_cache")  # fmt: skip


def copy_repository(state: Path) -> Path:
    """The checkout's tracked layout copied into ``state`` without run outputs, with this
    interpreter's .venv linked in, so documented commands run there as in a fresh clone."""
    shutil.copytree(ROOT, state, ignore=shutil.ignore_patterns(*NOT_COPIED), dirs_exist_ok=True)
    (state / ".venv").symlink_to(VENV)
    return state


def write_image(path: Path, seed: int, size=(96, 80)) -> None:
    """A smooth random photo-like image (so blur and colour effects all change it)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def write_audio(path: Path, seed: int, seconds: float = 10.5, sr: int = 16_000) -> None:
    """A few harmonic tones with noise: every audio effect changes it audibly."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 110 * 2 ** (rng.integers(0, 24) / 12)
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12))
    x = 0.2 * x / np.abs(x).max() + 0.01 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), sr)


def write_data(
    base: Path, images: dict[str, int], audio: dict[str, int], seed: int = 0, stem: str = ""
) -> None:
    """``images``/``audio``: category -> file count, under base/data/{images,audio}."""
    for cat, n in images.items():
        for i in range(n):
            write_image(base / "data/images" / cat / f"{stem or 'img '}{i}.png", seed)
            seed += 1
    for genre, n in audio.items():
        for i in range(n):
            write_audio(base / "data/audio" / genre / f"{stem or 'clip_'}{i}.wav", seed)
            seed += 1


#: Foil concepts Phase 1 embeds in workflow tests (phase1.max_concepts).
TEST_CONCEPTS = 40


def make_project(
    base: Path,
    models: dict[str, Path],
    images: dict[str, int],
    audio: dict[str, int],
    extra: dict | None = None,
) -> Path:
    """Data folders + a config overlay pointing at tiny models; returns the config path."""
    write_data(base, images, audio)
    config = {
        "data": {"images": "data/images", "audio": "data/audio"},
        "models": {"image": str(models["image"]), "audio": str(models["audio"]), "device": "cpu"},
    }
    if extra:
        config = deep_update(config, extra)
    # Phase 1 embeds every foil concept's words through every template and context; tiny models
    # on a CPU run a few dozen (a pipeline check: its p-values cannot reach Holm anyway).
    p1 = config.setdefault("phase1", {})
    p1["max_concepts"] = p1.get("max_concepts") or TEST_CONCEPTS
    path = base / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def deep_update(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = deep_update(out.get(k, {}), v) if isinstance(v, dict) else v
    return out


def snakemake_cmd(base: Path, *args: str, config: Path | None = None) -> list[str]:
    cmd = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(base)]
    cmd += ["--cores", "2", *args]
    return cmd + (["--configfile", str(config)] if config is not None else [])


def snakemake(
    base: Path, *args: str, config: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    cmd = snakemake_cmd(base, *args, config=config)
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


# A frame of Python code (Snakemake's own report of a failed job names the rule's line in its
# .smk file; that is the workflow's location, not a traceback of the code).
TRACE_FRAME = re.compile(r'^\s*File "[^"]+\.py", line \d+, in ', re.MULTILINE)


def assert_refused(proc: subprocess.CompletedProcess) -> str:
    """A refusal: a non-zero exit and no Python traceback on the console, neither Python's
    own nor the frames Snakemake lists for an exception raised while parsing (the reason is a
    line a person reads; docs/methods.md §8). Returns the console text."""
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text[-3000:]
    assert "Traceback (most recent call last)" not in text, text[-3000:]
    assert not TRACE_FRAME.search(text), text[-3000:]
    return text


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> count from a dry run's 'Job stats' table (empty when nothing to do)."""
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)\s*$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def small_config(model_dirs: dict[str, Path], n_effects: int = 2, **overrides) -> dict:
    """The full default config cut to 2 image × 2 audio effects × 2 intensities, pointing at
    tiny models; use with ``--replace-workflow-config`` (an overlay cannot remove effects).

    ``n_effects=1`` keeps blur and lpf only: 8 model jobs instead of 12, for tests about
    inputs and failures rather than about several effects (each model job costs seconds of
    imports on a small machine)."""
    cfg = load_config(ROOT / "workflow/schemas/config.schema.yaml", ROOT / "config/config.yaml")
    cfg["intensities"] = ["low", "high"]
    for modality, keep in (("image", ("blur", "brightness")), ("audio", ("lpf", "reverb"))):
        keep = keep[:n_effects]
        cfg["run_effects"][modality] = list(keep)
        cfg["effects"][modality] = {
            e: {
                **cfg["effects"][modality][e],
                "levels": {i: cfg["effects"][modality][e]["levels"][i] for i in ("low", "high")},
            }
            for e in keep
        }
        if "phase1" in cfg:
            syn = cfg["phase1"]["synonyms"][modality]
            cfg["phase1"]["synonyms"][modality] = {e: syn[e] for e in keep}
    cfg["data"] = {"images": "data/images", "audio": "data/audio"}
    cfg["models"].update(
        image=str(model_dirs["image"]), audio=str(model_dirs["audio"]), device="cpu"
    )
    return deep_update(cfg, overrides)


def write_config(base: Path, cfg: dict, name: str = "config.yaml") -> Path:
    path = base / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    return path


def small_run_configs(base: Path) -> list[str]:
    """The config files of the small run (absolute: snakemake reads them from its own cwd)."""
    return ["--configfile", str(base / "config/config.yaml"), str(base / "config/tiny-models.yaml")]
