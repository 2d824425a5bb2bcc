"""Phase 3 inference: the sign-flip test, Holm, BCa and the verdict, on known answers and on
simulations of the decision it makes (false passes when the decoder is no better than
text-only, power when it reads a planted per-clip sensitivity)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from delta_v2a.phase3 import baselines, strength
from delta_v2a.phase3.inference import (
    MIN_TEST_FILES_FLOOR,
    bca_interval,
    file_mean_differences,
    holm,
    phase3_verdict,
    sign_flip_pvalues,
    sign_flip_test,
    sign_matrix,
)


def _brute_force_p(d):
    """p by enumerating every sign vector with plain Python."""
    obs = sum(d)
    flips = [
        sum(s * x for s, x in zip(signs, d, strict=True))
        for signs in itertools.product((1, -1), repeat=len(d))
    ]
    return sum(f >= obs - 1e-12 for f in flips) / len(flips)


def test_sign_flip_is_exact_on_three_files_and_matches_brute_force():
    assert sign_flip_test([0.3, 0.1, 0.2]) == pytest.approx(1 / 8)  # the smallest p at n = 3
    assert sign_flip_test([-0.3, -0.1, -0.2]) == 1.0
    assert sign_flip_test([0.0, 0.0, 0.0]) == 1.0  # all ties: no evidence at all
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 5, 8):
        for _ in range(20):
            d = rng.standard_t(2, size=n)
            assert sign_flip_test(d) == pytest.approx(_brute_force_p(list(d)))
    signs, exact = sign_matrix(3)
    assert exact and signs.shape == (8, 3) and len({tuple(r) for r in signs}) == 8


def test_sign_flip_samples_above_sixteen_files_and_is_vectorised():
    signs, exact = sign_matrix(20)
    assert not exact and signs.shape == (20_001, 20) and (signs[0] == 1).all()
    d = np.full(20, 0.5)
    assert sign_flip_test(d) == pytest.approx(1 / 20_001, rel=0.2)  # only near-identity flips
    rows = np.random.default_rng(0).normal(size=(4, 7))
    assert np.allclose(sign_flip_pvalues(rows), [sign_flip_test(r) for r in rows])
    with pytest.raises(ValueError, match="10\\^4"):
        sign_matrix(17, n_random=100)


def test_sign_flip_size_is_its_level_under_a_symmetric_null():
    """Exactness: heavy-tailed, heteroscedastic but symmetric differences reject at p <= a
    in floor(a 2^n) / 2^n of runs."""
    rng = np.random.default_rng(11)
    n, runs = 8, 20_000
    d = rng.lognormal(0, 1, size=(runs, n)) * rng.standard_t(2, size=(runs, n))
    rate = (sign_flip_pvalues(d) <= 0.05).mean()
    assert abs(rate - np.floor(0.05 * 2**n) / 2**n) < 3 * np.sqrt(0.05 * 0.95 / runs)


def test_holm_is_phase1s_correction():
    assert np.allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    assert np.isnan(holm([np.nan, 0.02])[0]) and holm([np.nan, 0.02])[1] == 0.02


def test_bca_matches_scipy_on_a_skewed_sample():
    x = np.random.default_rng(5).lognormal(0, 1, size=15)
    ref = stats.bootstrap(
        (x,), np.mean, method="BCa", n_resamples=40_000, random_state=np.random.default_rng(1)
    ).confidence_interval
    low, high = bca_interval(x, 0.95, 40_000, np.random.default_rng(2))
    width = ref.high - ref.low
    assert abs(low - ref.low) < 0.03 * width and abs(high - ref.high) < 0.03 * width
    # BCa shifts right of the percentile interval for a right-skewed mean
    boots = x[np.random.default_rng(2).integers(15, size=(40_000, 15))].mean(1)
    assert high > np.quantile(boots, 0.975)
    assert bca_interval([2.0, 2.0, 2.0]) == (2.0, 2.0)


def test_file_mean_differences_average_within_files_first():
    files, d = file_mean_differences(
        np.array([1.0, 3.0, 2.0, np.nan]), np.array([0.0, 0.0, 1.0, 0.0]), np.array([7, 7, 9, 9])
    )
    assert list(files) == [7, 9] and np.allclose(d, [2.0, 1.0])


def test_below_min_test_files_is_inconclusive_never_pass():
    huge = np.full((3, 5), 10.0)  # five files, every seed far better than both baselines
    v = phase3_verdict({"text_only": huge, "shuffled_audio": huge}, min_test_files=6)
    assert v.status == "inconclusive" and not v.uses_audio and "only 5 test files" in v.reason
    two = phase3_verdict({"text_only": [5.0, 6.0], "shuffled_audio": [5.0, 6.0]})
    assert two.status == "inconclusive" and two.n_test_files == 2
    nan_file = np.r_[np.full(9, 1.0), np.nan]  # ten files, one without a value
    assert phase3_verdict({"text_only": nan_file, "shuffled_audio": np.ones(10)}).status == (
        "inconclusive"
    )
    with pytest.raises(ValueError, match=f">= {MIN_TEST_FILES_FLOOR}"):
        phase3_verdict({"text_only": huge, "shuffled_audio": huge}, min_test_files=5)
    with pytest.raises(ValueError, match="shuffled_audio"):
        phase3_verdict({"text_only": huge})


def test_verdict_needs_every_seed_and_every_gate_and_reports_the_rest():
    good = np.linspace(0.5, 1.5, 10)
    ok = phase3_verdict(
        {
            "text_only": [good, good],
            "shuffled_audio": [good, good],
            "curve_inversion": [-good, -good],
        }
    )
    assert ok.status == "pass" and ok.uses_audio and len(ok.seeds) == 2
    c = {x.name: x for x in ok.seeds[0].comparisons}
    assert c["text_only"].p == pytest.approx(1 / 1024) and c["text_only"].p_holm == pytest.approx(
        2 / 1024
    )
    assert c["curve_inversion"].passed is None and not c["curve_inversion"].gating
    assert c["text_only"].low <= c["text_only"].mean <= c["text_only"].high
    assert ok.to_dict()["seeds"][0]["comparisons"][0]["name"] == "text_only"
    bad_seed = phase3_verdict({"text_only": [good, -good], "shuffled_audio": [good, good]})
    assert bad_seed.status == "fail" and "seed 1: text_only" in bad_seed.reason
    assert "seed 0" not in bad_seed.reason


# --------------------------------------------------------------------------- simulations


def _null_differences(rng, n_files, n_seeds, per_file=12, genre_rho=0.0, n_genres=4):
    """Decoder and text-only errors exchangeable within each file (equal in truth), files of
    very different difficulty (log-normal scales) and heavy tails (t with 3 df, squared);
    the decoder's seeds share most of their error; shuffling clearly hurts (the worst case
    for the text-only gate, which alone must then hold the line). With ``genre_rho`` > 0 the
    files fall in ``n_genres`` genres (as the stratified split deals them) and each error has
    a component, of that share of its variance, common to one description in one genre."""
    scale = rng.lognormal(0.0, 0.8, size=(n_files, 1))
    genre = np.arange(n_files) % n_genres

    def err():
        own = rng.standard_t(3, size=(n_files, per_file))
        if not genre_rho:
            return scale * own
        shared = rng.standard_t(3, size=(n_genres, per_file))[genre]
        return scale * (np.sqrt(1 - genre_rho) * own + np.sqrt(genre_rho) * shared)

    e_text = err() + 0.3 * err()
    common = err()
    text, shuf = [], []
    for _ in range(n_seeds):
        e_dec = common + 0.3 * err()
        text.append((e_text**2 - e_dec**2).mean(1))
        shuf.append(((e_dec + 2 * scale) ** 2 - e_dec**2).mean(1))
    return {"text_only": np.array(text), "shuffled_audio": np.array(shuf)}


@pytest.mark.parametrize("n_files", [6, 10])
def test_false_pass_rate_when_the_decoder_equals_text_only(n_files):
    rng = np.random.default_rng(n_files)
    runs = 1000
    rates = {}
    for n_seeds in (1, 3):
        passes = [
            phase3_verdict(
                _null_differences(rng, n_files, n_seeds), min_test_files=6, n_boot=50
            ).status
            == "pass"
            for _ in range(runs)
        ]
        rates[n_seeds] = float(np.mean(passes))
    # three seeds (the verdict's use): at most 5 %; one seed: the exact size of the text gate
    # (floor(0.05 2^n) / 2^n) within Monte Carlo error
    assert rates[3] <= 0.05
    size = np.floor(0.05 * 2**n_files) / 2**n_files
    assert rates[1] <= size + 2 * np.sqrt(size * (1 - size) / runs)


def test_false_passes_grow_when_files_of_a_genre_share_their_errors():
    """The sign-flip test treats test files as independent: its claim is about new songs of
    the study's genres, described as the study describes them. When a description's error is
    shared by the files of one genre (a genre-level random effect), the false-pass rate
    against a population of new genres grows with the files per genre (docs/methods.md §6.5
    gives the 4000-run figures: 7.6 % at 20 files with half the variance shared). This test
    pins both sides: calibrated without the shared part, above nominal with it."""
    runs, n_files = 1000, 20
    rates = {}
    for rho in (0.0, 0.8):
        rng = np.random.default_rng(7)
        rates[rho] = np.mean(
            [
                phase3_verdict(
                    _null_differences(rng, n_files, 3, genre_rho=rho), min_test_files=6, n_boot=50
                ).status
                == "pass"
                for _ in range(runs)
            ]
        )
    assert rates[0.0] <= 0.05
    assert rates[0.8] > 0.07 and rates[0.8] > 2 * rates[0.0]


GRID = strength.u_grid(11)
WORDS = 4


def _planted_run(rng, n_test, n_train=40, per_word=3, n_seeds=3, est_noise=0.2):
    """A world where the audio matters: clip f's curve g_f(u) = s_f u^γ_f + noise (s_f
    log-normal, γ_f in [0.6, 1.8]), κ from the 5th percentile of the training clips' g_f(1),
    targets from θ uniform in the level word's bin (a few unreachable). Text-only is the mean
    training u* per word; the "decoder" inverts its own noisy reading of the clip's curve
    (scale off by a log-normal factor, new per seed) at the word's centre; shuffled is that
    decoder on other clips' readings, over many derangements; curve inversion is the ceiling.
    """
    n = n_train + n_test
    s, gamma = rng.lognormal(0.0, 0.45, n), rng.uniform(0.6, 1.8, n)
    curves = np.maximum(s[:, None] * GRID ** gamma[:, None] + rng.normal(0, 0.02, (n, 11)), 0)
    kappa = strength.kappa_scale(curves[:n_train, -1], 1.0, 5.0)

    def samples(files):
        f = np.repeat(files, WORDS * per_word)
        w = np.tile(np.repeat(np.arange(WORDS), per_word), len(files))
        return f, w, kappa * ((w + rng.random(len(f))) / WORDS) ** 1.3

    ftr, wtr, ttr = samples(np.arange(n_train))
    utr = strength.solve_u(GRID, curves[ftr], ttr).u
    lookup = np.array([utr[wtr == k].mean() for k in range(WORDS)])
    f, w, target = samples(np.arange(n_train, n))
    truth = strength.solve_u(GRID, curves[f], target)
    centre = kappa * ((w + 0.5) / WORDS) ** 1.3
    bins = kappa * ((w[:, None] + np.linspace(0.05, 0.95, 10)) / WORDS) ** 1.3
    ceiling = (baselines.curve_inversion(GRID, curves[f], bins) - truth.u) ** 2
    shuffles = baselines.shuffled_files_many(f, baselines.derangements(n_test, 30, 1))
    diffs = {"text_only": [], "shuffled_audio": [], "curve_inversion": []}
    for _ in range(n_seeds):
        read = curves * rng.lognormal(0.0, est_noise, (n, 1))
        dec = (baselines.curve_inversion(GRID, read[f], centre) - truth.u) ** 2
        sh = np.stack([baselines.curve_inversion(GRID, read[x], centre) for x in shuffles])
        shuf = baselines.shuffled_error((sh - truth.u) ** 2, f).per_sample
        for name, base in zip(diffs, ((lookup[w] - truth.u) ** 2, shuf, ceiling), strict=True):
            diffs[name].append(file_mean_differences(base, dec, f)[1])
    verdict = phase3_verdict({k: np.array(v) for k, v in diffs.items()}, n_boot=50)
    return verdict, int(truth.above.sum())


def test_power_with_a_planted_per_clip_sensitivity():
    rng = np.random.default_rng(20)
    runs = [_planted_run(rng, 20) for _ in range(200)]
    assert np.mean([v.status == "pass" for v, _ in runs]) >= 0.8
    assert sum(u for _, u in runs) > 0  # some targets were unreachable
    # the ceiling is better than the decoder on average: curve_inversion − decoder < 0
    ceiling = [
        c.mean for v, _ in runs for c in v.seeds[0].comparisons if c.name == "curve_inversion"
    ]
    assert np.mean(ceiling) < 0


# --------------------------------------------------------------------------- several seeds


def _seed_metrics(n_files, decoder_offset, bad=False):
    """One training seed's per-sample metrics on 2 samples per file: text-only and shuffled
    errors 0.3 + a per-file term, the decoder 0.1 + ``decoder_offset`` (or, for a bad seed,
    exactly text-only's errors)."""
    per_file = np.linspace(0.0, 0.05, n_files)
    text = np.repeat(0.3 + per_file, 2)
    dec = text.copy() if bad else np.full(2 * n_files, 0.1 + decoder_offset)
    metrics = {
        "decoder": dec,
        "text_lookup": text,
        "text_mlp": text + 0.01,
        "shuffled_audio": text + 0.02,
        "curve_inversion": np.full(2 * n_files, 0.05),
    }
    return {k: {"param_mse": v, "logmel_gain_db": v * 10} for k, v in metrics.items()}


def test_several_seeds_figures_are_mean_and_spread_and_every_seed_must_pass():
    """The job's pure evaluation (evaluate.evaluate_test) over 3 training seeds: the figures
    are the mean over seeds with each seed's mean and their SD (known answers), and the
    verdict fails when one of the 3 seeds fails, naming that seed."""
    from delta_v2a.phase3.evaluate import evaluate_test

    n = 12
    files = np.repeat(np.arange(n), 2)
    seen = np.ones(2 * n, dtype=bool)
    per_seed = [_seed_metrics(n, 0.01 * k) for k in range(3)]
    ev = evaluate_test(per_seed, files, seen, 200, 0, seeds=[7, 8, 9], min_test_files=10)
    dec = ev["figures"]["test"]["decoder"]["param_mse"]
    assert dec["per_seed"] == pytest.approx([0.1, 0.11, 0.12])
    assert dec["mean"] == pytest.approx(0.11) and dec["seed_sd"] == pytest.approx(0.01)
    assert ev["figures"]["test"]["text_lookup"]["param_mse"]["seed_sd"] == 0.0
    v = ev["verdict"]
    assert v["status"] == "pass" and v["seeds"] == [7, 8, 9] == v["seeds_passed"]
    assert v["text_only_baseline_per_seed"] == ["text_lookup"] * 3
    ps = [[c["p"] for c in r["comparisons"] if c["gating"]] for r in v["inference"]["seeds"]]
    assert np.allclose(ps, 2.0**-n)  # every file better in every seed: the smallest p
    per_seed[1] = _seed_metrics(n, 0.0, bad=True)
    bad = evaluate_test(per_seed, files, seen, 200, 0, seeds=[7, 8, 9], min_test_files=10)
    b = bad["verdict"]
    assert b["status"] == "fail" and b["uses_audio"] is False and b["seeds_passed"] == [7, 9]
    assert "seed 8: text_only" in b["reason"] and "seed 7" not in b["reason"]
    assert b["beats_text_only"] is False and b["shuffled_audio_hurts"] is True
    with pytest.raises(ValueError, match="per-seed results"):
        evaluate_test(per_seed, files, seen, 200, 0, seeds=[7, 8])
