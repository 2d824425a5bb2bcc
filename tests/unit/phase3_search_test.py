"""The continuous Text2FX-style search: known optima, the call budget, the cache."""

from __future__ import annotations

import math

import numpy as np
import pytest

from delta_v2a.phase3.search import golden_section_max


class Counted:
    """A score that counts its calls and refuses a u it has already been asked for."""

    def __init__(self, f):
        self.f, self.asked = f, []

    def __call__(self, u: float) -> float:
        assert u not in self.asked, f"u = {u} evaluated twice"
        self.asked.append(u)
        return self.f(u)


@pytest.mark.parametrize("peak", [0.0, 0.137, 0.5, 0.8123, 1.0])
def test_finds_the_optimum_of_a_smooth_unimodal_score_within_budget(peak):
    f = Counted(lambda u: math.exp(-8 * (u - peak) ** 2) + 0.1 * u * (1 - u))
    # the true argmax of f, on a fine grid
    fine = np.linspace(0, 1, 200_001)
    best = fine[np.argmax(np.exp(-8 * (fine - peak) ** 2) + 0.1 * fine * (1 - fine))]
    r = golden_section_max(f, budget=24, tol=1e-4)
    assert abs(r.u - best) < 1e-3 and r.n_calls == len(f.asked) <= 24
    assert r.value == pytest.approx(f.f(r.u))


def test_budget_is_a_hard_limit_and_the_best_point_is_returned():
    f = Counted(lambda u: -((u - 0.3) ** 2))
    r = golden_section_max(f, budget=5, tol=1e-9)
    assert r.n_calls == 5 == len(f.asked) and r.u == max(f.asked, key=f.f)
    assert len(r.points) == 5 and list(r.points) == sorted(r.points)


def test_known_points_are_free_and_narrow_the_bracket():
    score = lambda u: -abs(u - 0.4321)  # noqa: E731
    grid = {float(u): score(float(u)) for u in np.linspace(0, 1, 11)}
    f = Counted(score)
    r = golden_section_max(f, budget=15, tol=1e-4, known=grid)
    assert abs(r.u - 0.4321) < 1e-4 and r.n_calls == len(f.asked) <= 15
    assert all(0.3 <= u <= 0.5 for u in f.asked)  # between the best grid point's neighbours
    assert len(r.points) == 11 + r.n_calls


def test_bad_arguments():
    with pytest.raises(ValueError, match="lo < hi"):
        golden_section_max(lambda u: u, 1.0, 0.0)
    with pytest.raises(ValueError, match="budget"):
        golden_section_max(lambda u: u, budget=0)


def _angle_embed(counter):
    """A clip's embedding at u: the unit vector at angle 2u (file f adds 0.1 f), so the
    audio-text cosine is cos(2u - angle of the text): smooth, with a known maximum."""

    def embed(f, effect, u):
        counter.append((f, effect, u))
        a = 2.0 * u + 0.1 * f
        return np.array([math.cos(a), math.sin(a)])

    return embed


def test_search_clips_finds_each_samples_known_optimum_and_shares_renders():
    from delta_v2a.phase3.search import search_clips

    grid = np.linspace(0, 1, 5)
    files, effects = [0, 1, 0, 0], ["lpf", "lpf", "lpf", "reverb"]
    best_u = np.array([0.3, 0.62, 0.3, 0.81])  # samples 0 and 2: same clip, same text
    text = np.stack([[math.cos(2 * u + 0.1 * f), math.sin(2 * u + 0.1 * f)]
                     for u, f in zip(best_u, files, strict=True)])  # fmt: skip
    asked: list = []
    embed = _angle_embed(asked)
    known = np.stack([[embed(f, e, g) for g in grid] for f, e in zip(files, effects, strict=True)])
    asked.clear()  # the grid is the strength job's: free
    r = search_clips(embed, files, effects, text, grid, known, budget=14, tol=1e-4)
    np.testing.assert_allclose(r.u, best_u, atol=2e-3)
    assert (r.similarity > 0.9999).all() and (r.calls <= 14).all() and (r.calls > 0).all()
    # sample 2 repeats sample 0's search: every render it asks for is already cached
    assert r.embedded == len(asked) == len(set(asked)) == r.calls.sum() - r.calls[2]
    # budget 0: the grid argmax, no render at all
    asked.clear()
    g = search_clips(embed, files, effects, text, grid, known, budget=0)
    np.testing.assert_array_equal(g.u, [0.25, 0.5, 0.25, 0.75])
    assert asked == [] and g.embedded == 0 and (g.calls == 0).all()
    # the continuous search is never worse than the grid it starts from
    assert (r.similarity >= g.similarity - 1e-12).all()
    with pytest.raises(ValueError, match="one row per sample"):
        search_clips(embed, files[:2], effects, text, grid, known, budget=3)
