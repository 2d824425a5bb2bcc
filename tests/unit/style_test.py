"""The workflow stays lint-clean and formatted (snakemake --lint, snakefmt, ruff)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PY_PATHS = ["src", "tests", "workflow/scripts", "benchmarks", "scripts"]


def run(*cmd: str) -> subprocess.CompletedProcess:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)


def test_snakemake_lint_is_clean():
    # .test/ (snakemake-workflows convention): committed small data and hub-id models, so a
    # fresh clone lints without generating anything (the default data/ root may not exist)
    proc = run(
        str(BIN / "snakemake"),
        *("--directory", ".test", "--configfile", ".test/config/config.yaml", "--lint"),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "good condition" in out, out


@pytest.mark.parametrize(
    "cmd",
    [
        ["snakefmt", "--check", "Snakefile", "workflow/Snakefile", "workflow/rules"],
        ["ruff", "check", *PY_PATHS],
        ["ruff", "format", "--check", *PY_PATHS],
    ],
    ids=["snakefmt", "ruff-check", "ruff-format"],
)
def test_formatters_are_clean(cmd):
    proc = run(str(BIN / cmd[0]), *cmd[1:])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _layout_block() -> str:
    readme = (ROOT / "docs/architecture.md").read_text(encoding="utf-8")  # maintainers' tree
    start = readme.index("## Layout")
    return readme[
        readme.index("```\n", start) + 4 : readme.index("```\n", readme.index("```\n", start) + 4)
    ]


def _shipped_paths() -> set[str]:
    """Every file and folder a clean clone has: tracked or not yet added, never ignored.

    Checked against git rather than the working tree, where `make demo`'s ignored outputs
    (results/, resources/demo/) would stand in for files a fresh clone lacks."""
    proc = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"not a git checkout, cannot tell shipped files: {proc.stderr.strip()}")
    files = set(proc.stdout.splitlines())
    return files | {str(parent) for f in files for parent in Path(f).parents if str(parent) != "."}


def _named_paths(block: str) -> set[str]:
    """Paths in the layout block's first column, braces expanded ({a,b}.py -> a.py, b.py)."""
    out = set()
    for line in block.splitlines():
        token = line.split("  ")[0].strip()
        if not token or "<" in token:
            continue
        for part in token.split(", "):
            if "{" in part:
                head, rest = part.split("{", 1)
                names, tail = rest.split("}", 1)
                out |= {f"{head}{n}{tail}" for n in names.split(",")}
            else:
                out.add(part)
    return out


def test_readme_layout_names_what_exists_and_every_module():
    """The README's file tree is checked against the tree: every path it names exists, and
    every module of the package and every rule file is named (directly or by its folder)."""
    named = _named_paths(_layout_block())
    shipped = _shipped_paths()
    missing = sorted(p for p in named if "*" not in p and p.rstrip("/") not in shipped)
    assert missing == [], f"README layout names paths that do not exist: {missing}"
    folders = {p.rstrip("/") for p in named if p.endswith("/")}
    modules = [
        p.relative_to(ROOT).as_posix()
        for p in sorted((ROOT / "src/delta_v2a").glob("*.py"))
        if p.name != "__init__.py"
    ]
    modules += [p.relative_to(ROOT).as_posix() for p in (ROOT / "workflow/rules").glob("*.smk")]
    modules += [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "src/delta_v2a").iterdir()
        if p.is_dir() and (p / "__init__.py").exists()
    ]
    unnamed = [m for m in modules if m not in named and m not in folders]
    assert unnamed == [], f"README layout omits: {unnamed}"


def test_docs_cite_only_files_that_exist():
    """A file path cited in the project's Markdown (tests, scripts, sources) must exist."""
    import re

    docs = [ROOT / "README.md", *ROOT.glob("*/README.md"), *ROOT.glob("docs/*.md")]
    pattern = re.compile(r"`((?:tests|scripts|src|benchmarks|workflow|profiles)/[\w./-]+\.\w+)`")
    stale = [
        f"{doc.relative_to(ROOT)}: {path}"
        for doc in docs
        for path in pattern.findall(doc.read_text(encoding="utf-8"))
        if "*" not in path and not (ROOT / path).exists()
    ]
    assert stale == [], f"docs cite files that do not exist: {stale}"


def test_documented_benchmark_commands_use_flags_the_scripts_accept():
    """Every `benchmarks/<script>.py --flag` in the Makefile and the Markdown names a flag that
    script defines (a documented command must not stop on an unrecognised argument)."""
    import re

    texts = [ROOT / "Makefile", ROOT / "README.md", *ROOT.glob("*/README.md")]
    texts += sorted(ROOT.glob("docs/*.md"))
    calls = re.compile(r"benchmarks/(\w+)\.py((?:\s+--[\w-]+(?:[ =][^\s`-][^\s`]*)?)*)")
    bad = []
    for path in texts:
        for script, args in calls.findall(path.read_text(encoding="utf-8")):
            source = (ROOT / "benchmarks" / f"{script}.py").read_text(encoding="utf-8")
            for flag in re.findall(r"--[\w-]+", args):
                if f'"{flag}"' not in source:
                    bad.append(f"{path.name}: benchmarks/{script}.py {flag}")
    assert bad == [], f"documented flags the scripts do not define: {bad}"
