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
