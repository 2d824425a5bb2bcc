"""Every documented command runs: the fenced commands of README.md and docs/*.md, and the demo's
follow-up commands, each listed in docs/commands.yaml, run from a demo state and exit 0."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import soundfile as sf
import yaml
from PIL import Image, ImageFilter
from sessions import shared_folder, shared_root
from workflow_utils import ROOT, VENV, copy_repository, deep_update

LIST = ROOT / "docs/commands.yaml"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _normal(command: str) -> str:
    return " ".join(command.split())


def fenced_commands(text: str) -> list[str]:
    """Each command of the ```bash blocks (continuations joined, comments dropped, spaces
    collapsed) and each ```python block whole."""
    out = []
    for lang, body in re.findall(r"^```(bash|python)\n(.*?)^```", text, re.S | re.M):
        if lang == "python":
            out.append(body.strip())
            continue
        for line in re.sub(r"\\\n\s*", " ", body).splitlines():
            command = re.sub(r"(^|\s+)#.*$", "", line).strip()
            if command:
                out.append(_normal(command))
    return out


def listed() -> list[dict]:
    return yaml.safe_load(LIST.read_text(encoding="utf-8"))


def _key(entry: dict) -> str:
    return entry["command"].strip() if entry.get("python") else _normal(entry["command"])


def test_the_list_holds_every_documented_command_and_nothing_else():
    documented = [c for doc in DOCS for c in fenced_commands(doc.read_text(encoding="utf-8"))]
    entries = listed()
    keys = [_key(e) for e in entries]
    assert len(set(keys)) == len(keys), "docs/commands.yaml lists a command twice"
    missing = [c for c in documented if c not in keys]
    assert missing == [], f"documented commands missing from docs/commands.yaml: {missing}"
    prose = " ".join(_normal(d.read_text(encoding="utf-8").replace("`", " ")) for d in DOCS)
    stale = [k for e, k in zip(entries, keys, strict=True) if k not in documented
             and not (e.get("prose") and k in prose)]  # fmt: skip
    assert stale == [], f"docs/commands.yaml lists commands the docs no longer give: {stale}"
    for e in entries:
        assert ("run" in e) != ("skip" in e), f"{e['command']}: give exactly one of run, skip"


# --------------------------------------------------------------------------- the demo state


def _demo_config(small_run: Path) -> dict:
    """The small run's configuration under the demo's paths: config/demo.yaml of the state."""
    cfg = {}
    for name in ("config", "tiny-models"):
        cfg = deep_update(cfg, yaml.safe_load((small_run / f"config/{name}.yaml").read_text()))
    cfg["data"] = {"images": "resources/demo/images", "audio": "resources/demo/audio"}
    cfg["models"].update(image="resources/models/tiny-clip", audio="resources/models/tiny-clap")
    return cfg


@pytest.fixture(scope="module")
def demo_state(small_run: Path, tiny_model_root: Path, tmp_path_factory) -> Path:
    """A copy of the repository as `make demo` leaves it: the small run's results (made by the
    session's small_run fixture) under results/, its data and tiny models under resources/, and
    config/demo.yaml describing that run, so that each command runs as the docs write it.
    The decoder stores its CLAP relative to results/ (../../tiny_models/tiny-clap here): the
    state is made beside the small run, in the run's common temporary root (tests/sessions.py),
    so that path holds."""

    def build(state: Path) -> None:
        copy_repository(state)
        (state / "resources/models").mkdir(parents=True)
        for name in ("tiny-clip", "tiny-clap"):
            (state / "resources/models" / name).symlink_to(tiny_model_root / name)
        shutil.copytree(small_run / "data", state / "resources/demo")
        (state / "data").symlink_to(state / "resources/demo")  # the default config's data root
        for folder in ("results", "logs", ".snakemake"):
            if (small_run / folder).exists():
                shutil.copytree(small_run / folder, state / folder, symlinks=True)
        (state / "config/demo.yaml").write_text(yaml.safe_dump(_demo_config(small_run)))
        _user_files(state)

    assert shared_root(tmp_path_factory) == small_run.parent
    return shared_folder(tmp_path_factory, "demo_state", build)


def _user_files(state: Path) -> None:
    """The files the docs' commands name as a user's own: a.jpg (a demo photo), b.jpg (that
    photo blurred), in.wav and song.wav (a demo song)."""
    photo = sorted((state / "resources/demo/images").rglob("*.png"))[0]
    Image.open(photo).convert("RGB").save(state / "a.jpg", quality=95)
    Image.open(state / "a.jpg").filter(ImageFilter.GaussianBlur(4)).save(state / "b.jpg")
    song = sorted(p for p in (state / "resources/demo/audio").rglob("*") if p.is_file())[0]
    data, rate = sf.read(song, dtype="float32")
    for name in ("in.wav", "song.wav"):
        sf.write(state / name, data, rate)


@pytest.fixture(scope="module")
def planted_commands_state(planted_state: Path) -> Path:
    """The session's planted state (make demo's first half) with the user files beside it."""
    _user_files(planted_state)
    return planted_state


def _stale_stamp(state: Path) -> bool:
    """make rebuilds .venv (pip, network) when its stamp is older than the requirements."""
    stamp = VENV / ".installed"
    needs = ("requirements.txt", "requirements-demo.txt", "pyproject.toml")
    return not stamp.exists() or any(
        (state / n).stat().st_mtime > stamp.stat().st_mtime for n in needs
    )


RUN = [e for e in listed() if e.get("run")]
#: The fixture behind each `state` of docs/commands.yaml (default: demo).
STATES = {"demo": "demo_state", "planted": "planted_commands_state"}


def _setters(entry: dict) -> str:
    """The `sets` lines listed before ``entry`` in its state (shell variables such as M= and A=,
    which the docs set once for the commands after them), as a prefix for its shell."""
    state = entry.get("state", "demo")
    before = [e for e in RUN[: RUN.index(entry)] if e.get("state", "demo") == state]
    lines = [_normal(e["command"]) for e in before if e.get("sets")]
    return "".join(f"{line}; " for line in lines)


@pytest.mark.workflow
@pytest.mark.parametrize("entry", RUN, ids=[_normal(e["command"])[:60] for e in RUN])
def test_documented_command_runs_in_the_demo_state(entry, request):
    demo_state = request.getfixturevalue(STATES[entry.get("state", "demo")])
    for name in entry.get("files", []):
        assert (demo_state / name).is_file(), f"the demo state has no {name}"
    command = entry["command"].strip()
    if command.startswith("make ") and _stale_stamp(demo_state):
        pytest.skip(f"{VENV}/.installed missing or older than the requirements: make would "
                    "reinstall .venv")  # fmt: skip
    if entry.get("slow") and os.environ.get("DV2A_SLOW_COMMANDS") != "1":
        pytest.skip(f"{entry['slow']}; DV2A_SLOW_COMMANDS=1 runs it")
    if "report_screenshot" in command and shutil.which("chromium") is None:
        pytest.skip("no Chromium on PATH (Debian: apt-get install chromium)")
    if "report_screenshot" in command and not (demo_state / "results/report.html").exists():
        pytest.skip("no results/report.html: `make report` (listed before) did not run")
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(demo_state / "src")}
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env['PATH']}"
    argv = [str(VENV / "bin/python"), "-c", command] if entry.get("python") else ["bash", "-c"]
    if not entry.get("python"):
        argv.append(_setters(entry) + _normal(command))
    proc = subprocess.run(argv, cwd=demo_state, env=env, capture_output=True, text=True,
                          timeout=2400 if entry.get("slow") else 900)  # fmt: skip
    if entry.get("xfail") and proc.returncode != 0:
        pytest.xfail(f"known (docs/commands.yaml): {entry['xfail']}")
    assert not entry.get("xfail"), f"{command}: runs now; remove its xfail in docs/commands.yaml"
    expected = entry.get("exit", 0)
    assert proc.returncode == expected, (
        f"{command}: exit {proc.returncode}, documented {expected}\n{proc.stdout}\n{proc.stderr}"
    )
    for words in entry.get("prints", []):
        assert words in proc.stdout + proc.stderr, f"{command}: does not print {words!r}"
