"""The jobs layer only reads, calls and writes: no job module imports another job module
(jobs.common, the layer's shared kit, aside), and no job function outgrows one screen."""

from __future__ import annotations

import ast
from pathlib import Path

JOBS = Path(__file__).resolve().parents[2] / "src" / "delta_v2a" / "jobs"
#: Packages whose internal structure their own issue owns (a job package's modules may share).
OWN_PACKAGES = ("phase1", "phase3")
MAX_JOB_FUNCTION_LINES = 50


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


def _package(path: Path) -> str:
    rel = path.relative_to(JOBS)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_no_job_module_imports_another_job_module():
    found = []
    for path in _job_modules():
        mine = _package(path)
        for name in _imported(ast.parse(path.read_text(encoding="utf-8"))):
            parts = name.split(".")
            if parts[:2] != ["delta_v2a", "jobs"] or len(parts) < 3:
                continue
            other = parts[2]
            if other in ("common",) or (other == mine and mine in OWN_PACKAGES):
                continue
            if other in {_package(p) for p in _job_modules()}:
                found.append(f"{path.relative_to(JOBS)} imports {name}")
    assert not found, found


def test_job_functions_fit_one_screen():
    """Outside the job packages whose slimming is their own issue (phase1, phase3)."""
    long = []
    for path in _job_modules():
        if _package(path) in OWN_PACKAGES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_JOB_FUNCTION_LINES:
                    long.append(f"{path.relative_to(JOBS)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, long
