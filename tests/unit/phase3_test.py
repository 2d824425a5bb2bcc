"""Phase 3 science: pairs, data set and splits, decoder training, checkpoints, the model file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from phase3_utils import ALL_AUDIO, CONFIG, SR, TEMPLATES, WORDS, music

from delta_v2a.effects import apply_audio_effect
from delta_v2a.phase3 import (
    artifact,
    baselines,
    dataset,
    evaluate,
    inference,
    spectral,
    strength,
    train,
    windows,
)
from delta_v2a.phase3 import model as net
from delta_v2a.phase3.paramspace import audio_space_from_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_score_only_pairs_take_each_rows_best_audio_effect_above_threshold():
    matrix = np.array(
        [[0.02, 0.30, 0.0], [0.0, 0.0, 0.001], [np.nan, np.nan, np.nan], [0.0, 0.2, 0.1]]
    )
    rows = dataset.choose_pairs(
        matrix, ["blur", "brightness", "contrast", "saturation"], ALL_AUDIO[:3], 0.01, None
    )
    chosen = [(r["image_effect"], r["audio_effect"]) for r in rows if r["chosen"]]
    assert chosen == [("blur", "highshelf"), ("saturation", "highshelf")]
    assert "<= phase3.pair_threshold 0.01" in rows[1]["reason"]
    assert rows[2]["reason"].startswith("no finite")
    zeros = dataset.choose_pairs(np.zeros((4, 3)), list("abcd"), "xyz", 0.0, None)
    assert not any(r["chosen"] for r in zeros)


def test_significant_pairs_are_phase1s_choice_and_phase3_only_adds_its_threshold():
    matrix = np.array([[0.02, 0.30, 0.0], [0.0, 0.2, 0.1]])
    # Phase 1 chose blur's runner-up (lpf): its best score (highshelf) was not significant.
    phase1 = [{"image_effect": "blur", "audio_effect": "lpf", "score": 0.02, "p_adjusted": 0.01}]
    rows = dataset.choose_pairs(matrix, ["blur", "contrast"], ALL_AUDIO[:3], 0.01, phase1)
    assert [(r["audio_effect"], r["chosen"], r["p_adjusted"]) for r in rows] == [
        ("lpf", True, 0.01),
        (None, False, None),
    ]
    assert rows[1]["reason"] == "Phase 1 chose no pair for it"
    above = dataset.choose_pairs(matrix, ["blur", "contrast"], ALL_AUDIO[:3], 0.05, phase1)
    assert not above[0]["chosen"] and "0.02 <= phase3.pair_threshold 0.05" in above[0]["reason"]
    with pytest.raises(ValueError, match="discovery matrix has shape"):
        dataset.choose_pairs(matrix[:1], ["blur", "contrast"], ALL_AUDIO[:3], 0.0, phase1)


def test_descriptions_use_ordered_level_words():
    assert [dataset.level_word(u, WORDS) for u in (0.0, 0.24, 0.25, 0.6, 0.99, 1.0)] == [
        "slightly",
        "slightly",
        "moderately",
        "very",
        "extremely",
        "extremely",
    ]
    assert dataset.describe("a {level} blurry photo", "extremely") == "an extremely blurry photo"
    assert dataset.describe("a {level} blurry photo", "very") == "a very blurry photo"


def _samples(paths, seed=0, levels=4):
    pairs = [
        {"image_effect": "blur", "audio_effect": "lpf"},
        {"image_effect": "contrast", "audio_effect": "reverb"},
    ]
    categories = [p.split("/")[0] for p in paths]
    return dataset.build_samples(
        paths,
        categories,
        pairs,
        levels_per_pair=levels,
        level_words=WORDS,
        templates=TEMPLATES,
        heldout_templates=1,
        validation_templates=1,
        split=dataset.split_files(categories, {"val": 0.2, "test": 0.2}, seed),
        seed=seed,
    )


@pytest.mark.parametrize("n_files,seed", [(3, 0), (5, 1), (17, 2), (40, 3)])
def test_train_val_test_never_share_a_file_and_paraphrases_stay_on_test(n_files, seed):
    paths = [f"g{i % 3}/f{i}.wav" for i in range(n_files)]
    frame = _samples(paths, seed)
    files = {k: set(frame.loc[frame.split == k, "path"]) for k in dataset.SPLITS}
    assert all(files.values()) and set().union(*files.values()) == set(paths)
    assert not files["train"] & files["val"] and not files["train"] & files["test"]
    assert not files["val"] & files["test"]
    assert len(files["test"]) == min(max(1, round(0.2 * n_files)), n_files - 2)
    held = frame[frame.held_out]
    # held-out templates (the last one per effect) appear only on test files, never in training;
    # the validation template before it (apply's gate) reaches no sample at all
    assert set(held.split) == {"test"} and (held.template == 3).all()
    assert (frame.loc[~frame.held_out, "template"] < 2).all()
    heldout_texts = {
        dataset.describe(TEMPLATES[e][-1], w) for e in ("blur", "contrast") for w in WORDS
    }
    assert not heldout_texts & set(frame.loc[frame.split != "test", "description"])
    assert len(held) == (~frame.held_out & (frame.split == "test")).sum()
    # stratified levels: every (file, pair) has one level in each quarter
    bins = (
        frame[~frame.held_out]
        .groupby(["path", "audio_effect"])["level"]
        .apply(lambda s: sorted((s * 4).astype(int)))
    )
    assert all(b == [0, 1, 2, 3] for b in bins)
    pd.testing.assert_frame_equal(frame, _samples(paths, seed))
    with pytest.raises(ValueError, match="at least 3 audio files"):
        dataset.split_files(["a", "b"], {"val": 0.2, "test": 0.2}, 0)


def test_split_is_stratified_by_genre():
    cats = [g for g in "abcde" for _ in range(3)]  # the demo's 15 files, 5 genres
    split = dataset.split_files(cats, {"val": 0.2, "test": 0.2}, 0)
    for name in ("val", "test"):
        chosen = [c for c, s in zip(cats, split, strict=True) if s == name]
        assert len(chosen) == 3 and len(set(chosen)) == 3  # 3 files from 3 genres


# --------------------------------------------------------------------------- strength and metrics


def test_u_star_solver_inverts_a_known_monotone_curve_and_counts_unreachable():
    grid = strength.u_grid(21)
    curve = lambda u: 0.3 * u**2 + 0.1 * u  # noqa: E731  monotone, g(1) = 0.4
    rows = np.tile(curve(grid), (5, 1))
    truth = np.array([0.0, 0.1, 0.37, 0.8, 1.0])
    solved = strength.solve_u(grid, rows, curve(truth))
    # linear interpolation of a convex curve: within the grid's tolerance (cell 0.05)
    np.testing.assert_allclose(solved.u, truth, atol=0.05**2 * 0.3 / 0.1 + 1e-9)
    assert solved.n_unreachable == 0
    out = strength.solve_u(grid, rows[:3], np.array([0.5, -1.0, 0.4]))
    assert out.u.tolist() == [1.0, 0.0, 1.0] and out.above.tolist() == [True, False, False]
    assert out.n_unreachable == 1
    # a noisy, non-monotone curve is solved on its running maximum
    bumpy = np.array([[0.0, 0.2, 0.1, 0.4]])
    u = strength.solve_u(np.linspace(0, 1, 4), bumpy, np.array([0.3])).u[0]
    assert u == pytest.approx(2 / 3 + 0.5 / 3)
    assert strength.curve_at(grid, rows[:1], np.array([0.5]))[0] == pytest.approx(
        curve(0.5), abs=1e-3
    )


def test_image_strength_interpolates_phase0_norms_from_neutral():
    m = strength.image_strength([0.1, 0.2, 0.4])
    assert m(0.0) == 0.0 and m(1 / 3) == pytest.approx(0.1) and m(1.0) == pytest.approx(0.4)
    assert m(0.5) == pytest.approx(0.15)
    with pytest.raises(ValueError, match="zero mean"):
        strength.image_strength([0.0, 0.0])


def test_audio_dependence_separates_audio_spread_from_description():
    flat = {("p", w): np.full(6, i / 4) for i, w in enumerate(WORDS)}
    dep = strength.audio_dependence(flat, 0.02)
    assert dep["sd_across_files"] == 0 and dep["share_explained_by_description"] == 1.0
    assert dep["can_matter"] is False
    spread = {("p", w): np.array([0.2, 0.4, 0.6, 0.8]) for w in WORDS}
    dep = strength.audio_dependence(spread, 0.02)
    assert dep["sd_across_files"] == pytest.approx(np.std([0.2, 0.4, 0.6, 0.8]))
    assert dep["share_explained_by_description"] == pytest.approx(0.0) and dep["can_matter"]


def test_top_db_distance_on_constructed_spectra():
    power = np.full((4, 10), 1e-12)
    power[0] = 1.0  # a loud band; the rest 120 dB down
    db = spectral.to_db(power, 1e-20, 80.0)
    assert db.max() == 0.0 and db.min() == -80.0
    # the same clip 10 dB quieter overall: relative to its own peak, no difference at all
    assert spectral.spectral_distance(spectral.to_db(power * 0.1, 1e-20, 80), db) == 0.0
    # near-silent bins 120 vs 140 dB down: both floored at -80, they add nothing
    other = power.copy()
    other[1:] = 1e-14
    assert spectral.spectral_distance(spectral.to_db(other, 1e-20, 80), db) == 0.0
    # a band within range moves by exactly its change, averaged over all bins
    moved = power.copy()
    moved[1] = 1e-3  # -30 dB, was floored at -80: 50 dB over 10 of 40 bins
    assert spectral.spectral_distance(spectral.to_db(moved, 1e-20, 80), db) == pytest.approx(12.5)


def test_gain_aware_distance_sees_what_the_peak_relative_one_cannot():
    power = np.full((4, 10), 1e-12)
    power[0] = 1.0
    ref = spectral.to_db_reference(power, 1e-20, -100.0)
    assert ref.max() == 0.0 and ref.min() == -100.0  # 1e-12 is -120 dB re 1: floored
    quieter = spectral.to_db_reference(power * 0.1, 1e-20, -100.0)
    # 10 dB quieter: the loud band moves 10 dB (10 of 40 bins), the floored bins do not
    assert spectral.spectral_distance(quieter, ref) == pytest.approx(2.5)
    assert (
        spectral.spectral_distance(
            spectral.to_db(power * 0.1, 1e-20, 80), spectral.to_db(power, 1e-20, 80)
        )
        == 0.0
    )
    louder = spectral.to_db_reference(np.full((4, 10), 1e-2), 1e-20, -100.0)
    assert spectral.spectral_distance(
        louder, spectral.to_db_reference(np.full((4, 10), 1e-4), 1e-20, -100.0)
    ) == pytest.approx(20.0)
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)
    mel = spectral.MelSettings(n_fft=2048, hop_length=1024, n_mels=64, top_db=80.0, floor_db=-100)
    a, b = (spectral.log_mel_reference(x, SR, mel) for x in (tone, 0.5 * tone))
    assert np.median((a - b)[a > -60]) == pytest.approx(20 * np.log10(2), abs=0.05)


def test_both_log_mels_of_a_rendered_gain_error():
    """The job's two distances (renders.SPECTRAL_METRICS) on audio: a tone 6 dB too quiet is
    0 dB away peak-relative and 6 dB away on the common reference, in every bin above the
    floor (a pure tone is far above -100 dB only near its frequency: the mean is measured
    over those bins)."""
    sr = 16_000
    t = np.arange(sr) / sr
    tone = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 3000 * t)
    mel = spectral.MelSettings(n_fft=512, hop_length=256, n_mels=32, top_db=80.0, floor_db=-60.0)
    peak_a, gain_a = spectral.both_log_mels(tone, sr, mel)
    peak_b, gain_b = spectral.both_log_mels(tone * 10 ** (-6 / 20), sr, mel)
    assert spectral.spectral_distance(peak_a, peak_b) == pytest.approx(0.0, abs=1e-4)
    above = (gain_a > -60 + 7) & (gain_b > -60 + 1)
    assert above.mean() > 0.1
    np.testing.assert_allclose((gain_a - gain_b)[above], 6.0, atol=1e-3)
    assert 0 < spectral.spectral_distance(gain_a, gain_b) <= 6.0 + 1e-6
    np.testing.assert_array_equal(gain_a, spectral.log_mel_reference(tone, sr, mel, -60.0))


def _simulated_strongest(rng, n):
    """g_f(1) of n clips: log-normal sensitivities, as CLAP distances spread across music."""
    return rng.lognormal(0.0, 0.6, size=n)


def test_kappa_percentile_keeps_unreachable_targets_rare():
    rng = np.random.default_rng(8)
    grid = strength.u_grid(11)
    shares = {}
    for q in (5.0, 50.0):
        out = []
        for _ in range(50):
            train, test = _simulated_strongest(rng, 30), _simulated_strongest(rng, 200)
            gamma = rng.uniform(0.6, 1.8, size=(200, 1))
            curves = test[:, None] * grid**gamma
            theta = rng.random(200)
            kappa = strength.kappa_scale(train, 1.0, q)
            out.append(strength.unreachable_share(curves, kappa * theta**1.3))
            top = strength.unreachable_share(np.c_[train][:, [0, 0]], np.full(30, kappa))
            if q == 5.0:
                assert top <= 0.05  # on its own training files, by construction
        shares[q] = float(np.mean(out))
    assert shares[5.0] <= 0.05 < shares[50.0]
    assert strength.kappa_scale(np.arange(1.0, 11.0), 2.0, 50.0) == pytest.approx(2.5)
    assert np.isnan(strength.unreachable_share(np.zeros((0, 3)), np.zeros(0)))
    with pytest.raises(ValueError, match="kappa_percentile"):
        strength.kappa_scale(np.ones(3), 1.0, 101.0)


def test_matched_dependence_reads_only_the_files_it_is_given():
    grid = strength.u_grid(5)
    curves = np.stack([np.outer([1.0, 1.0, 1.0, 4.0], grid)], axis=1)  # 4 files, 1 effect
    frame = pd.DataFrame({"image_effect": ["blur"], "audio_effect": ["lpf"]})
    strengths = {"blur": strength.image_strength([1.0])}
    kappa = {"blur->lpf": 0.5}
    problem = strength.Matching(frame, grid, curves, ["lpf"], strengths, kappa, WORDS, "matched")
    train_val = strength.matched_dependence(problem, 0.02, files=[0, 1, 2])
    assert train_val["sd_across_files"] == 0.0 and train_val["n_files_used"] == 3
    assert train_val["files_used"] == "given subset"
    mask = strength.matched_dependence(problem, 0.02, files=np.array([True, True, False, True]))
    assert mask["n_files_used"] == 3 and mask["sd_across_files"] > 0
    everything = strength.matched_dependence(problem, 0.02)
    assert everything["files_used"] == "all, test included" and everything["n_files_used"] == 4


def test_curve_inversion_is_the_per_clip_ceiling():
    grid = strength.u_grid(11)
    curves = np.array([grid * 1.0, grid * 2.0])  # the second clip is twice as sensitive
    u = baselines.curve_inversion(grid, curves, np.array([0.5, 0.5]))
    assert u == pytest.approx([0.5, 0.25])
    # K targets per sample: the mean of their solutions
    many = baselines.curve_inversion(grid, curves, np.array([[0.2, 0.4], [0.2, 0.4]]))
    assert many == pytest.approx([0.3, 0.15])
    # against the true u* of θ uniform in a bin, the bin's mean beats its centre on MSE
    rng = np.random.default_rng(0)
    convex = np.tile(grid**3, (4000, 1))
    theta = rng.uniform(0.5, 0.75, 4000)
    truth = strength.solve_u(grid, convex, theta).u
    centre = baselines.curve_inversion(grid, convex, np.full(4000, 0.625))
    spread = baselines.curve_inversion(
        grid, convex, np.tile(np.linspace(0.5125, 0.7375, 10), (4000, 1))
    )
    assert np.mean((spread - truth) ** 2) < np.mean((centre - truth) ** 2)


def test_many_derangements_and_the_shuffled_error_over_them():
    four = baselines.derangements(4)
    assert len(four) == 9 and len({tuple(p) for p in four}) == 9  # all of !4
    assert not (four == np.arange(4)).any()
    ten = baselines.derangements(10, 150, seed=3)
    assert ten.shape == (150, 10) and len({tuple(p) for p in ten}) == 150
    assert not (ten == np.arange(10)).any() and (np.sort(ten, axis=1) == np.arange(10)).all()
    assert (baselines.derangements(10, 150, seed=3) == ten).all()
    with pytest.raises(ValueError, match="at least 2"):
        baselines.derangements(1)
    files = np.array([3, 3, 5, 7])
    moved = baselines.shuffled_files_many(files, baselines.derangements(3))
    assert moved.tolist() == [[5, 5, 7, 3], [7, 7, 3, 5]]
    errors = np.array([[1.0, 3.0, 2.0, 2.0], [3.0, 5.0, 4.0, 4.0]])
    out = baselines.shuffled_error(errors, files)
    assert out.per_sample.tolist() == [2.0, 4.0, 3.0, 3.0]
    assert out.per_derangement.tolist() == [2.0, 4.0] and out.mean == 3.0
    assert out.sd == pytest.approx(np.sqrt(2.0)) and out.low < out.mean < out.high


def test_seed_spread_is_exactly_zero_for_a_seed_free_figure_and_the_sd_otherwise():
    """A baseline no seed changes reports SD 0 exactly (CI once saw 1.7e-17 from summing three
    equal means); a seeded figure reports the ddof-1 SD of its seeds' means."""
    files = np.repeat(np.arange(3), 2)
    mask = np.ones(6, dtype=bool)
    same = {"fixed": {"mse": np.full(6, 0.1 + 0.2)}}
    per_seed = [{**same, "net": {"mse": np.full(6, v)}} for v in (1.0, 2.0, 4.0)]
    out = evaluate.seed_spread(per_seed, files, mask)
    assert out["fixed"]["mse"]["seed_sd"] == 0.0
    assert out["net"]["mse"]["per_seed"] == [1.0, 2.0, 4.0]
    assert out["net"]["mse"]["seed_sd"] == pytest.approx(np.std([1.0, 2.0, 4.0], ddof=1))
    one = evaluate.seed_spread(per_seed[:1], files, mask)
    assert one["net"]["mse"]["seed_sd"] == 0.0


def test_bootstrap_over_files_and_baseline_helpers():
    files = np.repeat(np.arange(4), 3)
    values = np.repeat([1.0, 2.0, 3.0, 4.0], 3)
    b = evaluate.bootstrap_mean(values, files, 2000, 0)
    assert b["mean"] == 2.5 and 1.0 <= b["low"] < 2.5 < b["high"] <= 4.0 and b["n_files"] == 4
    same = evaluate.bootstrap_mean(np.full(12, 0.5), files, 500, 0)
    assert same["low"] == same["high"] == 0.5
    d = evaluate.bootstrap_difference(values + 1.0, values, files, 500, 0)
    assert d["mean"] == d["low"] == d["high"] == pytest.approx(1.0)
    perm = baselines.derangement(5, 0)
    assert sorted(perm) == list(range(5)) and not (perm == np.arange(5)).any()
    pred, unseen = baselines.text_lookup(
        ["a", "a", "b"], np.array([[0.0], [1.0], [3.0]]), ["a", "c"]
    )
    assert pred[:, 0].tolist() == [0.5, 4.0 / 3.0] and unseen == 1
    err = evaluate.strength_error(np.array([1.5, 0.5, 1.0]), np.array([1.0, 1.0, 0.0]))
    assert err[:2].tolist() == [0.5, 0.5] and np.isnan(err[2])


# --------------------------------------------------------------------------- training


def sensitivity_task(target: str, n_files=40, seed=0, dim=16, k=3):
    """Known answer: each file has a sensitivity s_f in [0.5, 1] and a strength curve
    g_f(u) = s_f u. Its window embeddings carry s_f (a random projection plus noise). The
    matched target is u* = m(θ) / s_f with m(θ) = 0.5 θ, so it depends on the audio; in
    ``level`` mode the target is θ, which the audio cannot tell."""
    rng = np.random.default_rng(seed)
    space = audio_space_from_config(CONFIG, ["lpf"], SR)
    paths = [f"g{i % 4}/f{i}.wav" for i in range(n_files)]
    categories = [p.split("/")[0] for p in paths]
    frame = dataset.build_samples(
        paths,
        categories,
        [{"image_effect": "blur", "audio_effect": "lpf"}],
        levels_per_pair=8,
        level_words=WORDS,
        templates=TEMPLATES,
        heldout_templates=1,
        validation_templates=1,
        split=dataset.split_files(categories, {"val": 0.2, "test": 0.2}, seed),
        seed=seed,
    )
    sens = rng.uniform(0.5, 1.0, n_files)
    grid = strength.u_grid(41)
    curves = sens[:, None] * grid[None, :]
    m = 0.5 * frame["level"].to_numpy()
    u = strength.solve_u(grid, curves[frame.file_index], m).u
    frame["u_star"] = u if target == "matched" else frame["level"]
    texts = sorted(set(frame["description"]))
    text_emb = rng.standard_normal((len(texts), dim)).astype(np.float32)
    proj = rng.standard_normal((1, dim))
    audio = (sens[:, None, None] - 0.75) * 4 * proj[None] + 0.1 * rng.standard_normal(
        (n_files, k, dim)
    )
    data = train.TrainData(
        text=text_emb,
        audio=audio.astype(np.float32),
        desc_index=frame["description"].map({t: i for i, t in enumerate(texts)}).to_numpy(),
        file_index=frame["file_index"].to_numpy(),
        targets=dataset.targets_for(frame, space, "u_star"),
        split=np.where(frame.held_out, "heldout", frame.split).astype(str),
    )
    arch = {
        "kind": "attention",
        "text_dim": dim,
        "audio_dim": dim,
        "n_windows": k,
        "n_params": space.dim,
        "d_model": 32,
        "heads": 4,
        "hidden": 64,
        "dropout": 0.0,
    }
    return data, arch, frame


FAST = train.TrainSettings(epochs=60, batch_size=32, lr=3e-3, weight_decay=0.01, seed=0)


def _test_figures(target):
    data, arch, frame = sensitivity_task(target, n_files=50)  # 10 test files
    test = data.split == "test"
    train_rows = data.split == "train"
    text, files = data.text[data.desc_index[test]], data.file_index[test]
    dec = train.train_decoder(arch, data, FAST)
    model = net.model_with_state(arch, dec.best_state)
    pred = np.clip(net.predict(model, text, data.audio[files]), 0, 1)
    uniq = np.unique(files)
    shuffled = uniq[baselines.derangement(len(uniq), 0)][np.searchsorted(uniq, files)]
    pred_shuf = np.clip(net.predict(model, text, data.audio[shuffled]), 0, 1)
    keys = list(zip(frame.image_effect, frame.level_word, strict=True))
    lookup, _ = baselines.text_lookup(
        [k for k, t in zip(keys, train_rows, strict=True) if t],
        data.targets[train_rows],
        [k for k, t in zip(keys, test, strict=True) if t],
    )
    truth = data.targets[test]
    mse = {
        name: evaluate.per_sample_mse(p, truth)
        for name, p in (("decoder", pred), ("text", lookup), ("shuffled", pred_shuf))
    }
    diff = evaluate.bootstrap_difference(mse["text"], mse["decoder"], files, 2000, 0)
    shuf = evaluate.bootstrap_difference(mse["shuffled"], mse["decoder"], files, 2000, 0)
    figs = {k: {"param_mse": evaluate.bootstrap_mean(v, files, 2000, 0)} for k, v in mse.items()}
    per_file = {
        gate: inference.file_mean_differences(mse[name], mse["decoder"], files)[1]
        for gate, name in (("text_only", "text"), ("shuffled_audio", "shuffled"))
    }
    tested = inference.phase3_verdict(per_file, n_boot=2000)
    assert tested.n_test_files == 10
    return figs, diff, shuf, evaluate.verdict(figs, tested, diff, shuf, "text")


def test_known_answer_decoder_uses_audio_that_encodes_per_file_sensitivity():
    figs, diff, shuf, v = _test_figures("matched")
    dec, text = figs["decoder"]["param_mse"]["mean"], figs["text"]["param_mse"]["mean"]
    print("matched:", {k: f["param_mse"] for k, f in figs.items()}, diff, shuf)
    assert dec < 0.5 * text, (dec, text)  # a clear margin on held-out files
    assert diff["low"] > 0 and shuf["low"] > 0 and v["uses_audio"] is True
    assert v["status"] == "pass" and v["message"].startswith("the decoder USES THE AUDIO")
    assert "on a new song of the genres studied" in v["message"]  # the claim and its scope (§6.5)
    # under shuffled audio the margin over text-only disappears (it gets worse than text-only)
    assert figs["shuffled"]["param_mse"]["mean"] > 0.9 * text
    assert v["beats"] == ["text", "shuffled"] and v["does_not_beat"] == []


def test_known_answer_level_targets_cannot_beat_text_only():
    figs, diff, shuf, v = _test_figures("level")
    print("level:", {k: f["param_mse"] for k, f in figs.items()}, diff, shuf)
    assert not diff["low"] > 0 and v["uses_audio"] is False and v["status"] == "fail"
    assert "NO EVIDENCE" in v["message"] and "text_only" in v["reason"]


@pytest.mark.parametrize("kind", ["attention", "concat", "text"])
def test_every_kind_trains_and_picks_its_epoch_on_validation(kind):
    data, arch, _ = sensitivity_task("matched", n_files=12)
    arch = {**arch, "kind": kind}
    settings = train.TrainSettings(epochs=5, batch_size=32, lr=3e-3, weight_decay=0.01, seed=0)
    result = train.train_decoder(arch, data, settings)
    val = data.split == "val"
    pred = net.predict(
        net.model_with_state(arch, result.best_state),
        data.text[data.desc_index[val]],
        data.audio[data.file_index[val]],
    )
    assert result.best_val_loss == pytest.approx(
        float(((pred - data.targets[val]) ** 2).mean()), rel=1e-4
    )
    assert len(result.history) == 5 and result.resumed_from is None


def test_interrupted_training_resumes_to_the_same_result(tmp_path):
    data, arch, _ = sensitivity_task("matched", n_files=8)
    settings = train.TrainSettings(epochs=6, batch_size=16, lr=3e-3, weight_decay=0.01, seed=1)
    arch = {**arch, "dropout": 0.2}  # dropout draws random numbers: their state must resume too
    straight = train.train_decoder(arch, data, settings, checkpoint=tmp_path / "a.pt")

    class Killed(Exception):
        pass

    def kill_after_3(record):
        if record["epoch"] == 3:
            raise Killed

    with pytest.raises(Killed):
        train.train_decoder(
            arch, data, settings, checkpoint=tmp_path / "b.pt", on_epoch=kill_after_3
        )
    assert torch.load(tmp_path / "b.pt", weights_only=True)["epoch"] == 3
    resumed = train.train_decoder(arch, data, settings, checkpoint=tmp_path / "b.pt")
    assert resumed.resumed_from == 4 and resumed.epochs_run == 3
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(straight.history, resumed.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-6)
    assert straight.best_epoch == resumed.best_epoch
    for key, value in straight.best_state.items():
        torch.testing.assert_close(value, resumed.best_state[key])
    # a finished checkpoint: nothing left to train
    again = train.train_decoder(arch, data, settings, checkpoint=tmp_path / "b.pt")
    assert again.epochs_run == 0 and again.best_epoch == straight.best_epoch
    # other settings: the checkpoint is not theirs, training starts afresh
    other = train.train_decoder(
        arch,
        data,
        train.TrainSettings(epochs=2, batch_size=16, lr=1e-3, weight_decay=0.01, seed=1),
        checkpoint=tmp_path / "b.pt",
    )
    assert other.resumed_from is None and len(other.history) == 2


def test_decoder_model_round_trips_with_weights_only(tmp_path):
    data, arch, _ = sensitivity_task("matched", n_files=6)
    space = audio_space_from_config(CONFIG, ["lpf"], SR)
    result = train.train_decoder(
        arch, data, train.TrainSettings(epochs=2, batch_size=32, lr=3e-3, weight_decay=0.01, seed=0)
    )
    path = tmp_path / "decoder_model.pt"
    artifact.save_decoder(path, _payload(arch, result.best_state, space, "tiny-clap"))
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == artifact.FORMAT and raw["level_words"] == WORDS
    loaded = artifact.load_decoder(path)
    assert loaded.space == space and loaded.windows.count == 3
    text, audio = data.text[data.desc_index[:5]], data.audio[data.file_index[:5]]
    expected = net.predict(net.model_with_state(arch, result.best_state), text, audio)
    np.testing.assert_allclose(loaded.predict(text, audio), np.clip(expected, 0, 1), atol=1e-6)
    # a checkpoint with anything but plain values is refused before it is written
    with pytest.raises(TypeError, match="not a plain value"):
        artifact.save_decoder(tmp_path / "bad.pt", {"status": "trained", "space": space})
    artifact.save_decoder(tmp_path / "none.pt", {"status": "no_pairs", "message": "NO PAIR passes"})
    with pytest.raises(ValueError, match="NO PAIR passes"):
        artifact.load_decoder(tmp_path / "none.pt")
    # a damaged or foreign file fails with a message naming it, never a bare zip error
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cut\.pt: cannot read the decoder"):
        artifact.load_decoder(tmp_path / "cut.pt")
    old = {**torch.load(path, weights_only=True), "format_version": 1}
    del old["made_by"]
    torch.save(old, tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"old\.pt: decoder format 1 made by .*reads format 2"):
        artifact.load_decoder(tmp_path / "old.pt")
    assert raw["made_by"].startswith("delta-v2a ")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ValueError, match=r"list\.pt: not a Delta V2A decoder"):
        artifact.load_decoder(tmp_path / "list.pt")


def _payload(arch, state, space, clap, window=480_000, gate=None):
    """A model file's contents; ``gate`` is apply's calibration (none: an empty gate)."""
    empty = {"threshold": 2.0, "margin": 3.0, "references": []}
    empty["reference_embeddings"] = torch.zeros((0, arch["text_dim"]))
    return {
        "status": "trained",
        "arch": arch,
        "state_dict": state,
        "paramspace": space.to_dict(),
        "level_words": WORDS,
        "templates": {"blur": TEMPLATES["blur"]},
        "heldout_templates": {"blur": TEMPLATES["blur"][-1:]},
        "validation_templates": {"blur": TEMPLATES["blur"][-2:-1]},
        "pairs": [{"image_effect": "blur", "audio_effect": "lpf", "score": 0.1}],
        "target": "matched",
        "audio_model": {"name_or_path": str(clap), "dtype": "fp32", "normalize": True},
        "windows": {"count": arch["n_windows"], "hop": SR, "window": window, "sample_rate": SR},
        "preroll": SR,
        "apply": empty if gate is None else gate,
        "test_figures": {"decoder": {"param_mse": {"mean": 0.01, "low": 0.005, "high": 0.02}}},
        "verdict": {"uses_audio": False, "message": "NO EVIDENCE"},
    }


# --------------------------------------------------------------------------- audio windows and use


def test_window_sequence_ends_with_the_extraction_window(tmp_path, clap_embedder):
    from delta_v2a.extract import Decoding, render
    from delta_v2a.media import MediaFile

    path = tmp_path / "song.wav"
    sf.write(path, music(seconds=12.0, seed=3), SR)
    spec = windows.WindowSpec(count=3, hop=SR, window=clap_embedder.window_samples, sample_rate=SR)
    clips = windows.window_clips(path, spec)
    centred = render(MediaFile(str(path), "g", "audio"), Decoding("audio", preroll=SR), None, {})
    np.testing.assert_array_equal(clips[-1], centred)
    np.testing.assert_array_equal(clips[0][2 * SR :], clips[-1][: -2 * SR])
    full = windows.embed_windows(clap_embedder, [str(path)], spec)
    given = np.full((1, clap_embedder.dim), 7.0, np.float32)
    reused = windows.embed_windows(clap_embedder, [str(path)], spec, last=given)
    np.testing.assert_allclose(full[0, :2], reused[0, :2], atol=1e-5)
    np.testing.assert_array_equal(reused[0, 2], given[0])
    np.testing.assert_allclose(full[0, 2], clap_embedder.embed_audio([centred])[0], atol=1e-5)


def _gate(clap_embedder, effect):
    """apply's gate calibrated by the project's code on the tiny CLAP, for a decoder trained
    on the first two templates of ``effect`` at every level word."""
    from delta_v2a.phase3.calibrate import apply_calibration, gate_texts

    trained = [
        {"text": dataset.describe(t, w), "effect": effect, "level_word": w}
        for t in TEMPLATES[effect][:2]
        for w in WORDS
    ]
    rows = gate_texts(TEMPLATES, [effect], WORDS, 1, 1)
    texts = [r["text"] for r in trained] + [r["text"] for r in rows]
    cal = apply_calibration(trained, rows, texts, clap_embedder.embed_texts(texts), WORDS)
    return cal | {"reference_embeddings": torch.as_tensor(cal["reference_embeddings"])}


def _apply_model(tmp_path, clap_dir, clap_embedder, relative=False, effect="blur"):
    import os

    space = audio_space_from_config(CONFIG, ["lpf", "highshelf"], SR)
    arch = {
        "kind": "attention",
        "text_dim": 512,
        "audio_dim": 512,
        "n_windows": 2,
        "n_params": space.dim,
        "d_model": 16,
        "heads": 2,
        "hidden": 16,
        "dropout": 0.0,
    }
    torch.manual_seed(0)
    state = net.build_decoder(arch).state_dict()
    state["head.3.bias"] = torch.tensor([3.0, -3.0])  # always: lpf at full strength, no shelf
    state["head.3.weight"] = torch.zeros_like(state["head.3.weight"])
    model = tmp_path / "models" / f"decoder_model_{effect}.pt"
    model.parent.mkdir(exist_ok=True)
    payload = _payload(arch, state, space, clap_dir, gate=_gate(clap_embedder, effect))
    payload["pairs"] = [{"image_effect": effect, "audio_effect": "lpf", "score": 0.1}]
    payload["templates"] = {effect: TEMPLATES[effect]}
    payload["heldout_templates"] = {effect: TEMPLATES[effect][-1:]}
    if relative:
        payload["audio_model"]["name_or_path"] = os.path.relpath(clap_dir, model.parent)
        payload["audio_model"]["relative_to_model_file"] = True
    artifact.save_decoder(model, payload)
    return model


def test_apply_command_renders_a_file_and_prints_parameters(
    tmp_path, tiny_clap_dir, clap_embedder, capsys, monkeypatch
):
    from delta_v2a.cli import main

    model = _apply_model(tmp_path, tiny_clap_dir, clap_embedder, relative=True)
    audio = tmp_path / "in.wav"
    sf.write(audio, music(seconds=11.0, sr=16_000, seed=5), 16_000)
    out = tmp_path / "out.wav"
    monkeypatch.chdir(tmp_path / "models")  # the stored CLAP path resolves from the model's folder
    args = ["apply", "--model", str(model), "--audio", str(audio), "--out", str(out)]
    assert main([*args, "--describe", "a very blurry photo"]) == 0
    printed = capsys.readouterr().out
    assert "lpf: cutoff_hz = 800 Hz (u = 1.000)" in printed and "highshelf: bypassed" in printed
    # the song as it is (16 kHz) goes through the predicted chain; the model read 48 kHz windows
    y, sr = sf.read(out, dtype="float32")
    assert sr == 16_000 and len(y) == 11 * 16_000
    x, _ = sf.read(audio, dtype="float32")
    np.testing.assert_array_equal(
        y, apply_audio_effect("lpf", x, 16_000, {"cutoff_hz": 800.0, "order": 4})
    )
    assert main([*args, "--describe", "a very blurry photo", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["parameters"]["lpf"] == {"order": 4.0, "cutoff_hz": 800.0}
    assert doc["normalised"] == {"lpf.cutoff_hz": 1.0, "highshelf.gain_db": 0.0}
    assert doc["accepted"]["exact"] is True
    missing = ["apply", "--model", str(tmp_path / "missing.pt"), "--audio", str(audio)]
    assert main([*missing, "--describe", "x", "--out", str(out)]) == 2


def _our_lines(err: str) -> str:
    """apply's own stderr (transformers may print a progress bar before it): one line."""
    assert "Traceback" not in err
    ours = [line for line in err.splitlines() if line.startswith("delta-v2a")]
    assert len(ours) == 1, err
    return ours[0]


def _apply_args(tmp_path, model):
    """`delta-v2a apply` arguments on an 11 s music clip, and the output path they name."""
    audio = tmp_path / "in.wav"
    sf.write(audio, music(seconds=11.0, seed=5), SR)
    out = tmp_path / "out.wav"
    return ["apply", "--model", str(model), "--audio", str(audio), "--out", str(out)], out


def test_apply_refuses_unknown_descriptions_unless_forced(
    tmp_path, tiny_clap_dir, clap_embedder, capsys
):
    from delta_v2a.cli import main

    model = _apply_model(tmp_path, tiny_clap_dir, clap_embedder)
    args, out = _apply_args(tmp_path, model)
    assert main([*args, "--describe", "a cat playing piano"]) == 3
    err = _our_lines(capsys.readouterr().err)
    assert err.startswith("delta-v2a apply: refused (exit 3): 'a cat playing piano' is not a")
    assert "is nearest to" in err or "its nearest trained description" in err
    assert "pairs: blur -> lpf" in err and "level words: slightly, moderately" in err
    assert "--force applies it anyway" in err and not out.exists()
    assert main([*args, "--describe", "a cat playing piano", "--force"]) == 0
    assert "WARNING: --force" in capsys.readouterr().err and out.exists()


def test_contrast_only_decoder_refuses_an_extremely_blurry_photo(
    tmp_path, tiny_clap_dir, clap_embedder, capsys
):
    """The measured defect (issue 22): a contrast-only decoder accepted "an extremely blurry
    photo". Now its nearest reference is a blur description, which is named, exit 3."""
    from delta_v2a.cli import main

    model = _apply_model(tmp_path, tiny_clap_dir, clap_embedder, effect="contrast")
    args, out = _apply_args(tmp_path, model)
    assert main([*args, "--describe", "an extremely blurry photo"]) == 3
    err = _our_lines(capsys.readouterr().err)
    assert not out.exists()
    assert (
        "it is nearest to 'an extremely blurry photo' (blur, extremely; cosine 1.0000), an " in err
    )
    assert "image effect this decoder was not trained on" in err and "pairs: contrast -> lpf" in err
    # a description the contrast decoder was trained on is accepted as it is
    assert main([*args, "--describe", "an extremely low-contrast photo", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["accepted"]["exact"] is True and doc["accepted"]["decision"] == "exact"


def test_apply_names_clap_when_the_stored_model_path_is_gone(
    tmp_path, tiny_clap_dir, clap_embedder, capsys
):
    import shutil

    from delta_v2a.cli import main

    clap = tmp_path / "clap"
    shutil.copytree(tiny_clap_dir, clap)
    model = _apply_model(tmp_path, clap, clap_embedder, relative=True)
    shutil.rmtree(clap)
    audio = tmp_path / "in.wav"
    sf.write(audio, music(seconds=11.0, seed=5), SR)
    args = ["apply", "--model", str(model), "--audio", str(audio), "--out", str(tmp_path / "o.wav")]
    assert main([*args, "--describe", "a very blurry photo"]) == 2
    assert "pass --audio-model" in capsys.readouterr().err
    assert main([*args, "--describe", "a very blurry photo", "--clap", str(tiny_clap_dir)]) == 2
    assert "--clap is now --audio-model" in capsys.readouterr().err
    args += ["--describe", "a very blurry photo", "--audio-model", str(tiny_clap_dir)]
    assert main(args) == 0


def test_info_prints_what_the_decoder_knows(tmp_path, tiny_clap_dir, clap_embedder, capsys):
    from delta_v2a.cli import main

    model = _apply_model(tmp_path, tiny_clap_dir, clap_embedder)
    assert main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    assert "target matched" in out and "pair: blur -> lpf" in out
    assert "level words: slightly, moderately, very, extremely" in out
    assert "(held out, test only)" in out and "verdict: NO EVIDENCE" in out
    assert "'a {level} fuzzy photo' (held out, calibrates apply)" in out
    assert "apply gate on validation: " in out and "held-out test: " in out
    assert "test decoder: MSE 0.01 [0.005, 0.02]" in out and str(tiny_clap_dir) in out
    assert main(["info", str(model), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    gate = artifact.load_decoder(model).gate
    assert doc["target"] == "matched" and doc["apply_threshold"] == pytest.approx(gate["threshold"])
    assert doc["apply_margin"] == pytest.approx(gate["margin"])
    assert doc["apply_validation"]["n_paraphrases"] == len(WORDS)
    assert main(["info", str(tmp_path / "nope.pt")]) == 2


# --------------------------------------------------------------------------- the jobs, in process
