"""Phase 0 tables over whole delta stores: grouping, order and per-group statistics, on
synthetic stores whose answers are known in advance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from delta_v2a import phase0
from delta_v2a.storage import DeltaStore

D = 64


def along(rng, v, n, scale):
    """n deltas of norm `scale` pointing along `v`, with a little isotropic noise."""
    rows = v / np.linalg.norm(v) + 0.1 * rng.standard_normal((n, D)) / np.sqrt(D)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows * scale).astype(np.float32)


def make_store(file_cat, effects, intensities, deltas_by_variant, rng):
    """A DeltaStore from one (n_files, D) block per (effect, intensity), in that order."""
    n_files = len(file_cat)
    codes = [(e, i) for e in range(len(effects)) for i in range(len(intensities))]
    return DeltaStore(
        modality="image",
        delta=np.concatenate(deltas_by_variant),
        file_index=np.tile(np.arange(n_files), len(codes)),
        effect_code=np.repeat([e for e, _ in codes], n_files),
        intensity_code=np.repeat([i for _, i in codes], n_files),
        files=np.array([f"f{i}.png" for i in range(n_files)]),
        file_category=np.asarray(file_cat),
        original=rng.standard_normal((n_files, D)).astype(np.float32),
        effects=np.array(effects),
        intensities=np.array(intensities),
    )


def synthetic_store(rng, n_files=12, cats=("a", "b", "c")):
    """'blur' moves every file one way (growing with intensity); 'noise' moves at random."""
    v = rng.standard_normal(D)
    file_cat = [cats[i % len(cats)] for i in range(n_files)]
    blocks = [along(rng, v, n_files, s) for s in (0.02, 0.05)]
    blocks += [rng.standard_normal((n_files, D)).astype(np.float32) * s for s in (0.02, 0.05)]
    return make_store(file_cat, ["blur", "noise"], ["low", "high"], blocks, rng)


def test_phase0_tables_group_correctly():
    rng = np.random.default_rng(12)
    store = synthetic_store(rng)
    sens = phase0.sensitivity_table([store], 0.01)
    assert [(r["effect_type"], r["intensity"]) for r in sens] == [
        ("blur", "low"),
        ("blur", "high"),
        ("noise", "low"),
        ("noise", "high"),
    ]
    assert all(r["n"] == 12 for r in sens)
    within = phase0.within_category_table([store], 0.8, 0.3)
    assert len(within) == 2 * 2 * 3 and all(r["n"] == 4 for r in within)
    blur = [r for r in within if r["effect_type"] == "blur"]
    noise = [r for r in within if r["effect_type"] == "noise"]
    assert all(r["consistent"] for r in blur)
    assert not any(r["consistent"] for r in noise)
    cross = phase0.cross_category_table([store], 0.05)
    assert [r["categories"] for r in cross] == [["a", "b", "c"]] * 4
    assert cross[0]["mean_cosine"] > 0.9
    summary = phase0.summarise_consistency(within)
    assert [s["consistent"] for s in summary] == [True, True, False, False]
    across = phase0.across_intensity_table([store])
    assert [a["norm_increasing"] for a in across] == [True, True]


def test_tables_keep_config_order_not_alphabetical():
    # Effects and intensities come out in the store's (config) order: "zoom" before "blur",
    # "mid" before "high".
    rng = np.random.default_rng(14)
    v = rng.standard_normal(D)
    blocks = [along(rng, v, 4, s) for s in (0.01, 0.02, 0.03, 0.04)]
    store = make_store(["a", "b", "a", "b"], ["zoom", "blur"], ["mid", "high"], blocks, rng)
    sens = phase0.sensitivity_table([store], 0.01)
    want = [(e, i) for e in ("zoom", "blur") for i in ("mid", "high")]
    assert [(r["effect_type"], r["intensity"]) for r in sens] == want
    assert [r["mean"] for r in sens] == pytest.approx([0.01, 0.02, 0.03, 0.04], rel=1e-5)


def test_cross_category_table_uses_each_files_category():
    # Categories a and b move along +v, c along -v: prototype cosines (1, -1, -1), whose
    # population variance is 8/9, so the effect is not context-invariant.
    rng = np.random.default_rng(15)
    v = rng.standard_normal(D)
    file_cat = ["a", "b", "c"] * 5
    signs = np.array([-1.0 if c == "c" else 1.0 for c in file_cat], dtype=np.float32)
    block = along(rng, v, len(file_cat), 0.1) * signs[:, None]
    store = make_store(file_cat, ["blur"], ["low"], [block], rng)
    (row,) = phase0.cross_category_table([store], max_variance=0.05)
    assert row["categories"] == ["a", "b", "c"]
    assert row["variance"] == pytest.approx(8 / 9, abs=0.02)
    assert row["mean_cosine"] == pytest.approx(-1 / 3, abs=0.02)
    assert row["invariant"] is False


def test_consistency_figure_is_the_same_figure_on_every_run(tmp_path):
    """The same results draw the same pixels, whatever numpy's global random state (seaborn's
    default jitter drew from it, so each run's figure differed)."""
    from PIL import Image

    from delta_v2a import plots

    store = synthetic_store(np.random.default_rng(12))
    within = pd.DataFrame(phase0.within_category_table([store], 0.8, 0.3))
    pixels = []
    for seed in (1, 2):
        np.random.seed(seed)  # noqa: NPY002 (the global state seaborn used to draw from)
        plots.consistency_figure(within, 0.8, tmp_path / f"{seed}.png", "test")
        pixels.append(np.asarray(Image.open(tmp_path / f"{seed}.png")))
    assert pixels[0].shape == pixels[1].shape and (pixels[0] == pixels[1]).all()
