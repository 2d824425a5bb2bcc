"""The model sweep (docs/sweep.md): the whole study once per named (image model, audio model)
pair, and how far the pairs agree.

A reviewer's first question about a finding here is whether it is a quirk of one model pair.
The sweep answers it with the study's own outputs: each pair runs unchanged in its own folder,
and the comparison reads only what every run already writes (summary.json, the discovery matrix
and its labels). No statistic is decided again: a pair's chosen Phase 1 pairs are its own.

Pure functions: planning the pairs' configurations, and the agreement table. The job
(``delta_v2a.jobs.sweep``) reads and writes.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.artifacts.summary import Summary
from delta_v2a.config import ConfigError
from delta_v2a.constants import MODALITIES

#: A pair's name becomes part of its rules' names (``<name>_all``): an identifier.
PAIR_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: The data roots a pair's own config files may set, read from the pair's folder.
DATA_KEYS = ("images", "audio")
#: summary.json phase names -> the agreement table's measure names.
PHASES = {
    "health": "health",
    "phase 0-a sensitivity": "phase0a_sensitivity",
    "phase 0-b linearity": "phase0b_consistency",
    "phase 3 decoder": "phase3",
}


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class PairPlan:
    """One pair of the sweep: its name, the folder its study writes under, its configuration."""

    name: str
    folder: str  # normalised; "." is the working directory itself (results/)
    config: dict[str, Any] = field(repr=False)

    @property
    def prefix(self) -> str | None:
        """The module prefix Snakemake puts before each of the pair's paths (None: none)."""
        return None if self.folder == "." else self.folder

    def path(self, relative: str) -> str:
        """``relative`` (a study path such as results/summary.json) inside the pair's folder."""
        return relative if self.folder == "." else f"{self.folder}/{relative}"


def merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base`` mapping by mapping, as Snakemake merges config files."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def _data_from_folder(own: Mapping[str, Any], folder: str) -> dict[str, Any]:
    """The data roots a pair's own files give, read from its folder: the pair is then exactly
    the run ``snakemake --directory <folder> --configfile <its files>`` would make."""
    data = own.get("data")
    if not isinstance(data, Mapping) or folder == ".":
        return dict(own)
    fixed = {
        k: os.path.normpath(os.path.join(folder, v))
        if k in DATA_KEYS and isinstance(v, str) and not os.path.isabs(os.path.expanduser(v))
        else v
        for k, v in data.items()
    }
    return {**own, "data": fixed}


def _pair(
    name: str,
    spec: Mapping[str, Any],
    base: Mapping[str, Any],
    read_config: Callable[[str], Mapping[str, Any]],
) -> PairPlan:
    if not PAIR_NAME.match(name):
        raise ConfigError(
            f"sweep.pairs.{name}: a pair's name must be a letter followed by letters, digits "
            "or _ (it names the pair's rules)"
        )
    folder = os.path.normpath(spec.get("folder", f"runs/{name}"))
    if os.path.isabs(folder) or folder.startswith(".."):
        raise ConfigError(f"sweep.pairs.{name}.folder: {folder!r} must be inside the run folder")
    own: dict[str, Any] = {}
    for path in spec.get("configfiles", []):
        own = merged(own, read_config(path))
    own = merged(own, {"models": dict(spec.get("models", {}))})
    own = _data_from_folder(merged(own, spec.get("config", {})), folder)
    return PairPlan(name=name, folder=folder, config=merged(base, own))


def check_sweep(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """The ``sweep`` key against its schema (workflow/schemas/sweep.schema.yaml), refused in one
    line that names the key, not with Snakemake's print of the whole schema."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(schema).iter_errors(dict(config)))
    if error is not None:
        key = ".".join(str(k) for k in error.absolute_path) or "sweep"
        raise ConfigError(f"{key}: {error.message}")


def read_config_file(path: str) -> dict[str, Any]:
    """A pair's config file, read from the working directory as --configfile reads it."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise ConfigError(f"sweep: config file {path}: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        why = " ".join(str(err).split())
        raise ConfigError(f"sweep: config file {path}: not valid YAML ({why})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"sweep: config file {path}: not a mapping of config keys")
    return data


def plan_pairs(
    config: Mapping[str, Any], read_config: Callable[[str], Mapping[str, Any]]
) -> list[PairPlan]:
    """Each pair's study configuration: the sweep's own config (without ``sweep``), then the
    pair's config files, its ``models`` and its ``config`` (later wins, key by key).

    Refused: fewer than two pairs (nothing to compare) and two pairs in one folder (the second
    would overwrite the first's results)."""
    pairs = config["sweep"]["pairs"]
    if len(pairs) < 2:
        raise ConfigError("sweep.pairs: a sweep compares model pairs; give at least two")
    base = {k: v for k, v in config.items() if k != "sweep"}
    plans = [_pair(name, spec or {}, base, read_config) for name, spec in pairs.items()]
    seen: dict[str, str] = {}
    for plan in plans:
        if plan.folder in seen:
            raise ConfigError(
                f"sweep.pairs.{plan.name}.folder: {plan.folder!r} is also "
                f"{seen[plan.folder]}'s; each pair needs its own folder"
            )
        seen[plan.folder] = plan.name
    return plans


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class SweepSettings:
    """The comparison rule's params: the pairs in the order of its inputs."""

    pairs: list[str]
    models: list[dict[str, str]]  # each pair's {image: ..., audio: ...} as its config names them


def sweep_settings(plans: Sequence[PairPlan]) -> SweepSettings:
    return SweepSettings(
        pairs=[p.name for p in plans],
        models=[{m: str(p.config.get("models", {}).get(m)) for m in MODALITIES} for p in plans],
    )


@dataclass(frozen=True)
class PairOutcome:
    """What one pair's finished study says, from its own files."""

    name: str
    models: Mapping[str, str]  # modality -> model as the pair's config names it
    summary: Summary  # summary.json
    matrix: np.ndarray  # discovery_matrix.npy: image effects x audio effects
    labels: DiscoveryLabels  # discovery_labels.json


def chosen_pairs(labels: DiscoveryLabels) -> list[tuple[str, str]]:
    """The (image effect, audio effect) pairs Phase 1 chose, in its ``chosen_pairs`` order."""
    return [(c["image_effect"], c["audio_effect"]) for c in labels.chosen_pairs]


def _pairs_text(pairs: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{i}->{a}" for i, a in pairs) if pairs else "none"


def pair_rows(outcome: PairOutcome) -> list[tuple[str, str, str, str]]:
    """One pair's verdicts: its models, health, Phase 0, its Phase 1 pairs and Phase 3."""
    rows = [("pair", outcome.name, f"{m}_model", str(v)) for m, v in outcome.models.items()]
    rows += [("pair", outcome.name, PHASES[p], outcome.summary.status(p)) for p in PHASES]
    rows.insert(
        -1, ("pair", outcome.name, "phase1_pairs", _pairs_text(chosen_pairs(outcome.labels)))
    )
    rows.append(("pair", outcome.name, "not_science", str(bool(outcome.summary.not_science))))
    return rows


def aligned_cells(a: PairOutcome, b: PairOutcome) -> tuple[np.ndarray, np.ndarray]:
    """The two discovery matrices over the (image, audio) effect cells both studied, in one
    order (each file's rows and columns are in its own labels' order)."""
    ia, aa = list(a.labels.image_effects), list(a.labels.audio_effects)
    ib, ab = list(b.labels.image_effects), list(b.labels.audio_effects)
    cells = [(i, j) for i in ia if i in ib for j in aa if j in ab]
    x = np.array([a.matrix[ia.index(i), aa.index(j)] for i, j in cells], dtype=float)
    y = np.array([b.matrix[ib.index(i), ab.index(j)] for i, j in cells], dtype=float)
    return x, y


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN where it is undefined (fewer
    than 3 finite cells, or one side constant: no ranking to compare)."""
    from scipy.stats import rankdata

    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    rx, ry = rankdata(x), rankdata(y)
    return float(np.corrcoef(rx, ry)[0, 1])


def spearman_rows(outcomes: Sequence[PairOutcome]) -> list[tuple[str, str, str, str]]:
    """For every two pairs: the Spearman correlation of their discovery matrices."""
    rows = []
    for k, a in enumerate(outcomes):
        for b in outcomes[k + 1 :]:
            x, y = aligned_cells(a, b)
            rho = spearman(x, y)
            subject = f"{a.name} vs {b.name}"
            if math.isnan(rho):
                flat = [o.name for o, v in ((a, x), (b, y)) if v.size and np.ptp(v) == 0]
                why = f"{', '.join(flat)}: constant matrix" if flat else "under 3 common cells"
                value = f"undefined ({why})"
            else:
                value = f"{rho:.3f}"
            rows += [
                ("spearman", subject, "rho", value),
                ("spearman", subject, "cells", str(x.size)),
            ]
    return rows


def choice_rows(outcomes: Sequence[PairOutcome]) -> list[tuple[str, str, str, str]]:
    """For each image effect: how many pairs chose each audio effect for it (and "none")."""
    n = len(outcomes)
    images = list(dict.fromkeys(i for o in outcomes for i in o.labels.image_effects))
    rows = []
    for image in images:
        by_audio: dict[str, list[str]] = {}
        for o in outcomes:
            picks = [a for i, a in chosen_pairs(o.labels) if i == image] or ["none"]
            for audio in picks:
                by_audio.setdefault(audio, []).append(o.name)
        for audio, names in by_audio.items():
            rows.append(("choice", image, audio, f"{len(names)} of {n}: {', '.join(names)}"))
    return rows


def pairs_agree(outcomes: Sequence[PairOutcome]) -> bool:
    """Whether every pair chose the same Phase 1 pairs (none at all counts as a choice)."""
    return len({frozenset(chosen_pairs(o.labels)) for o in outcomes}) == 1


def agreement_rows(outcomes: Sequence[PairOutcome]) -> list[tuple[str, str, str, str]]:
    """The whole agreement table (results/sweep/agreement.tsv; docs/sweep.md): per pair,
    across pairs, per image effect, and the sweep's one line on Phase 1 agreement."""
    rows = [r for o in outcomes for r in pair_rows(o)]
    rows += spearman_rows(outcomes) + choice_rows(outcomes)
    verdict = "yes" if pairs_agree(outcomes) else "no"
    rows.append(("sweep", "all pairs", "pairs", str(len(outcomes))))
    rows.append(("sweep", "all pairs", "phase1_pairs_agree", verdict))
    return rows


AGREEMENT_COLUMNS = ("section", "subject", "measure", "value")


def agreement_tsv(rows: Sequence[tuple[str, str, str, str]]) -> str:
    """Tab-separated, one header line; tabs or newlines inside a value become spaces."""
    lines = ["\t".join(AGREEMENT_COLUMNS)]
    lines += ["\t".join(re.sub(r"[\t\r\n]+", " ", v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def agreement_lines(outcomes: Sequence[PairOutcome]) -> list[str]:
    """What the console and the report say in a few lines."""
    out = [
        f"{o.name} ({', '.join(f'{m} {v}' for m, v in o.models.items())}): Phase 1 "
        f"{_pairs_text(chosen_pairs(o.labels))}; "
        f"Phase 3 {o.summary.status('phase 3 decoder')}"
        for o in outcomes
    ]
    agree = pairs_agree(outcomes)
    out.append(
        "the pairs chose the same Phase 1 pairs"
        if agree
        else "the pairs DISAGREE on Phase 1's pairs: what one pair finds is not shared by all"
    )
    return out


def figure_panels(outcomes: Sequence[PairOutcome]) -> list[tuple]:
    """What the sweep figure draws per pair: name, matrix, row and column labels, chosen."""
    return [
        (
            o.name,
            o.matrix,
            list(o.labels.image_effects),
            list(o.labels.audio_effects),
            chosen_pairs(o.labels),
        )
        for o in outcomes
    ]


def section_html(lines: Sequence[str]) -> str:
    """The report's "Model sweep" section: the agreement lines as a list."""
    import html

    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f"<h2>Model sweep</h2><ul>{items}</ul>\n"
