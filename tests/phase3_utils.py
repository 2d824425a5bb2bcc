"""Shared by the Phase 3 tests: the default config's audio effects, level words and templates,
and a short harmonic test signal."""

from __future__ import annotations

import numpy as np
from workflow_utils import ROOT

from delta_v2a.config import load_config

SR = 48_000
CONFIG = load_config(ROOT / "workflow/schemas/config.schema.yaml", ROOT / "config/config.yaml")
ALL_AUDIO = list(CONFIG["effects"]["audio"])
WORDS = CONFIG["phase3"]["level_words"]
TEMPLATES = CONFIG["phase3"]["descriptions"]


def music(seconds: float = 1.5, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A 220 Hz harmonic tone with a little noise: every audio effect changes it."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 20))
    return (0.3 * x / np.abs(x).max() + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def training_log(status: str = "trained", *, test: dict | None = None, **fields):
    """A typed training log for tests of its readers: what the test gives, the rest empty.
    ``test`` holds the test section's figure tables (``figures``, ``paraphrase_figures``,
    ``shuffled_spread``); ``verdict`` and ``pairs`` may be dicts (pairs.json's choice: rows
    and chosen pairs with every field, significance with its note)."""
    from delta_v2a.artifacts.training_log import PairsChoice, TestSection, TrainingLog, Verdict

    verdict = fields.pop("verdict", {"uses_audio": None, "message": fields.get("message", "")})
    pairs = fields.pop("pairs", {})
    section = None
    if test is not None:
        section = TestSection(
            figures=test.get("figures", {}),
            paraphrase_figures=test.get("paraphrase_figures", {}),
            interval="",
            shuffled_spread=test.get("shuffled_spread"),
            n_rendered=0,
            render_seconds=0.0,
            mel={},
            metrics={},
            baselines={},
            text_lookup_unseen_keys=0,
        )
    return TrainingLog(
        meta=fields.pop("meta", {}),
        status=status,
        verdict=verdict if isinstance(verdict, Verdict) else Verdict(**verdict),
        pairs=pairs if isinstance(pairs, PairsChoice) else PairsChoice.from_json(pairs),
        test=section,
        **fields,
    )
