"""The code's shape, checked (docs/architecture.md): the jobs layer only reads, calls and
writes, so no job module imports another job module (jobs.common, the layer's shared kit,
aside) and no job function outgrows one screen; science never reaches up into the jobs; and no
module grows past what a reader holds in mind."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "delta_v2a"
JOBS = PACKAGE / "jobs"
MAX_JOB_FUNCTION_LINES = 50
MAX_MODULE_LINES = 500


def _job_modules() -> list[Path]:
    return [p for p in sorted(JOBS.rglob("*.py")) if p.name not in ("__init__.py", "common.py")]


def _imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def test_no_job_module_imports_another_job_module():
    """Each job module serves its own rule; what two jobs share lives in jobs.common (I/O kit)
    or in the science packages, so a job can be read, and changed, alone."""
    jobs = {_module_name(p) for p in _job_modules()}
    found = []
    for path in _job_modules():
        mine = _module_name(path)
        for name in _imported(ast.parse(path.read_text(encoding="utf-8"))):
            hit = next((j for j in jobs if name == j or name.startswith(j + ".")), None)
            if hit and hit != mine:
                found.append(f"{path.relative_to(JOBS)} imports {name}")
    assert not found, found


def test_job_functions_fit_one_screen():
    long = []
    for path in _job_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_JOB_FUNCTION_LINES:
                    long.append(f"{path.relative_to(JOBS)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, long


def test_science_never_imports_the_jobs_layer():
    """Pure functions take arrays and typed values, so they are testable without files; a
    science module importing a job would pull the I/O layer under them."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if JOBS in path.parents or path.parent == PACKAGE and path.name == "cli.py":
            continue
        for name in _imported(ast.parse(path.read_text(encoding="utf-8"))):
            if name == "delta_v2a.jobs" or name.startswith("delta_v2a.jobs."):
                found.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not found, found


def test_no_module_outgrows_what_a_reader_holds_in_mind():
    long = [
        f"{p.relative_to(PACKAGE)} ({n} lines)"
        for p in sorted(PACKAGE.rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, long
