"""The conda env for per-rule deployment pins exactly what the pip venv pins."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = {
    "snakemake",
    "snakemake-executor-plugin-slurm",
    "pytest",
    "pytest-xdist",
    "execnet",
    "filelock",
    "ruff",
    "snakefmt",
}


def pins(lines):
    out = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            out[name.lower()] = version
    return out


def test_conda_env_matches_requirements():
    req = pins((ROOT / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "envs/delta_v2a.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = pins(pip_section)
    assert conda == {k: v for k, v in req.items() if k not in DEV_ONLY}
    assert "python=3.11" in env["dependencies"]


def test_every_requirement_is_pinned_exactly():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert "==" in line, f"unpinned requirement: {line}"


DEMO_ONLY = {"scikit-image", "scikit-learn", "music21"}
# import name of each pinned package, where it differs from the package name
IMPORT_NAMES = {
    "pillow": "PIL",
    "opencv-python-headless": "cv2",
    "pyyaml": "yaml",
    "scikit-image": "skimage",
    "scikit-learn": "sklearn",
}
# pinned but never imported by name, and why
INDIRECT = {
    "safetensors": "the weights format transformers reads and writes (tiny and real models)",
    "snakemake": "the workflow engine (tests run it)",
    "snakemake-executor-plugin-slurm": "profiles/slurm (executor: slurm)",
    "ruff": "make lint",
    "snakefmt": "make lint",
    "pytest-xdist": "make test's worker processes (pytest -n)",
    "execnet": "pytest-xdist's channel to its workers",
}


def test_demo_packages_are_an_extra_not_a_runtime_requirement():
    req = pins((ROOT / "requirements.txt").read_text().splitlines())
    demo = pins((ROOT / "requirements-demo.txt").read_text().splitlines())
    assert set(demo) == DEMO_ONLY and not DEMO_ONLY & set(req)
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = {
        d.split(">")[0].split("=")[0].strip() for d in project["optional-dependencies"]["demo"]
    }
    assert extra == DEMO_ONLY
    runtime = {d.split(">")[0].split("<")[0].split("=")[0].strip() for d in project["dependencies"]}
    assert not DEMO_ONLY & runtime
    assert "-e '.[demo]'" in (ROOT / "Makefile").read_text()


def test_every_pin_is_used():
    """No unused pins: each pinned package is imported somewhere or has a stated indirect use."""
    code = "\n".join(
        p.read_text(encoding="utf-8")
        for folder in ("src", "workflow", "tests", "benchmarks")
        for p in (ROOT / folder).rglob("*.py")
    )
    req = pins((ROOT / "requirements.txt").read_text().splitlines())
    demo = pins((ROOT / "requirements-demo.txt").read_text().splitlines())
    for name in sorted(set(req) | set(demo)):
        if name in INDIRECT:
            continue
        module = IMPORT_NAMES.get(name, name.replace("-", "_"))
        used = f"import {module}" in code or f"from {module}" in code or f'"{module}"' in code
        assert used, f"{name} is pinned but nothing imports {module}"


def test_test_only_pins_are_exact_installed_without_deps_and_never_imported_at_run_time():
    """requirements-test.txt: the reference LAION-CLAP for the parity test, --no-deps."""
    lines = (ROOT / "requirements-test.txt").read_text().splitlines()
    test_pins = pins(lines)
    assert test_pins == {"laion-clap": "1.1.7", "torchlibrosa": "0.1.0"}
    assert "--no-deps -r requirements-test.txt" in (ROOT / "Makefile").read_text()
    import re

    src = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "src").rglob("*.py"))
    assert not re.search(r"^\s*(import|from) (laion_clap|torchlibrosa)\b", src, re.M)
