"""Phase 0 math on synthetic deltas whose answers are known in advance."""

from __future__ import annotations

import numpy as np
import pytest

from delta_v2a import metrics

D = 64


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def directed(rng, direction, n, noise, scale=0.1, scale_jitter=0.0):
    """n deltas along `direction` with isotropic noise and optional norm jitter."""
    base = unit(direction)[None, :] + noise * rng.standard_normal((n, D)) / np.sqrt(D)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    scales = scale * np.exp(scale_jitter * rng.standard_normal(n))  # log-normal: never flips
    return (base * scales[:, None]).astype(np.float32)


def test_closed_form_equals_brute_force():
    rng = np.random.default_rng(1)
    u = rng.standard_normal((37, D))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    g = u @ u.T
    brute = g[np.triu_indices(37, 1)].mean()
    assert metrics.mean_pairwise_cosine_units(u) == pytest.approx(brute, abs=1e-12)


def test_sensitivity_statistics_match_numpy():
    rng = np.random.default_rng(2)
    d = directed(rng, rng.standard_normal(D), 50, 0.1, scale=0.05, scale_jitter=0.2)
    norms = np.linalg.norm(d.astype(np.float64), axis=1)
    out = metrics.sensitivity(d, min_distance=0.01)
    assert out["n"] == 50
    assert out["mean"] == pytest.approx(norms.mean())
    assert out["std"] == pytest.approx(norms.std())
    assert (out["min"], out["max"]) == pytest.approx((norms.min(), norms.max()))
    assert out["sensitive"] is True
    assert metrics.sensitivity(d * 0.01, min_distance=0.01)["sensitive"] is False


def test_one_direction_is_consistent():
    rng = np.random.default_rng(3)
    d = directed(rng, rng.standard_normal(D), 40, noise=0.05)
    out = metrics.consistency(d, min_cosine=0.8, max_cv=0.3)
    assert out["mean_cosine"] > 0.99
    assert out["cv"] < 1e-6
    assert out["consistent"] is True


def test_random_directions_are_not_consistent():
    rng = np.random.default_rng(4)
    d = rng.standard_normal((200, D)).astype(np.float32)
    out = metrics.consistency(d, min_cosine=0.8, max_cv=0.3)
    assert abs(out["mean_cosine"]) < 0.02  # E = 0, sd ≈ 1/(n·sqrt(d)) scale
    assert out["consistent"] is False


def test_scale_jitter_fails_cv_gate_only():
    rng = np.random.default_rng(5)
    d = directed(rng, rng.standard_normal(D), 400, noise=0.01, scale_jitter=0.5)
    out = metrics.consistency(d, min_cosine=0.8, max_cv=0.3)
    assert out["mean_cosine"] > 0.99
    assert out["cv"] == pytest.approx(np.sqrt(np.exp(0.5**2) - 1), rel=0.15)  # log-normal CV
    assert out["consistent"] is False


def test_zero_and_nonfinite_deltas_are_counted_not_averaged():
    rng = np.random.default_rng(6)
    d = directed(rng, rng.standard_normal(D), 10, noise=0.0)
    d = np.vstack([d, np.zeros((2, D), np.float32), np.full((1, D), np.nan, np.float32)])
    out = metrics.consistency(d, 0.8, 0.3)
    assert (out["n"], out["n_zero_norm"], out["n_nonfinite"]) == (13, 2, 1)
    assert out["mean_cosine"] == pytest.approx(1.0)
    sens = metrics.sensitivity(d, 0.01)
    assert sens["min"] == 0.0  # a zero delta is a real zero norm...
    assert np.isfinite(sens["mean"])  # ...but NaN never enters the mean


@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_deltas_give_null_with_reason(n):
    out = metrics.consistency(np.ones((n, D), np.float32), 0.8, 0.3)
    assert out["mean_cosine"] is None and out["consistent"] is None
    assert "at least 2" in out["reason"]


def test_shared_direction_across_categories_is_invariant():
    rng = np.random.default_rng(7)
    v = rng.standard_normal(D)
    cats = {c: directed(rng, v, 30, noise=0.2) for c in "abcd"}
    out = metrics.cross_category(cats, max_variance=0.05)
    assert out["mean_cosine"] > 0.95
    assert out["variance"] < 1e-3
    assert out["invariant"] is True
    assert len(out["pairs"]) == 6


def test_category_specific_directions_have_low_mean_cosine():
    rng = np.random.default_rng(8)
    cats = {c: directed(rng, rng.standard_normal(D), 30, noise=0.2) for c in "abcd"}
    out = metrics.cross_category(cats, max_variance=0.05)
    assert abs(out["mean_cosine"]) < 0.4  # the mean reveals what the low variance hides


def test_mixed_agreement_has_high_variance():
    rng = np.random.default_rng(9)
    v = rng.standard_normal(D)
    cats = {
        "a": directed(rng, v, 20, 0.1),
        "b": directed(rng, v, 20, 0.1),
        "c": directed(rng, -v, 20, 0.1),
    }
    out = metrics.cross_category(cats, max_variance=0.05)
    # cosines ≈ (1, -1, -1): variance ≈ 8/9
    assert out["variance"] == pytest.approx(8 / 9, abs=0.05)
    assert out["invariant"] is False


def test_single_category_and_single_pair_have_no_verdict():
    rng = np.random.default_rng(10)
    one = metrics.cross_category({"a": rng.standard_normal((5, D))}, 0.05)
    assert one["variance"] is None and "at least 2" in one["reason"]
    two = metrics.cross_category(
        {"a": rng.standard_normal((5, D)), "b": rng.standard_normal((5, D))}, 0.05
    )
    assert two["invariant"] is None and two["variance"] == 0.0
    assert "single cosine" in two["reason"]


def test_zero_length_prototype_gives_null_not_nan():
    # Two opposite deltas in "a" cancel: its prototype has no direction, so the one pair's
    # cosine is undefined and no mean or variance exists (JSON has no NaN).
    v = np.ones(D, np.float32)
    out = metrics.cross_category({"a": np.stack([v, -v]), "b": v[None, :]}, 0.05)
    assert out["pairs"][0]["cosine"] is None
    assert out["mean_cosine"] is None and out["variance"] is None and out["invariant"] is None
    assert "defined cosine" in out["reason"]


def test_across_intensities_reports_growth_and_direction():
    rng = np.random.default_rng(11)
    v = rng.standard_normal(D)
    levels = [
        (n, directed(rng, v, 20, 0.1, scale=s))
        for n, s in [("low", 0.01), ("mid", 0.02), ("high", 0.04)]
    ]
    out = metrics.across_intensities(levels)
    assert out["norm_increasing"] is True
    assert out["cosine_lowest_highest_prototype"] > 0.99
    shuffled = [levels[0], levels[2], levels[1]]
    assert metrics.across_intensities(shuffled)["norm_increasing"] is False


def test_group_indices_matches_python_grouping():
    rng = np.random.default_rng(13)
    a, b = rng.integers(0, 3, 100), rng.integers(0, 4, 100)
    got = {k: sorted(v.tolist()) for k, v in metrics.group_indices(a, b)}
    want: dict = {}
    for i, k in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        want.setdefault(k, []).append(i)
    assert got == want
