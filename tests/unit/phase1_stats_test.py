"""Phase 1 statistics with known answers (docs/methods.md §5): centring, the permutation nulls,
multiple-comparison corrections, bootstrap coverage, shared words. Simulations are vectorised
and small so the file runs in seconds."""

from __future__ import annotations

import copy
import dataclasses
import warnings

import numpy as np
import pytest
from workflow_utils import ROOT

from delta_v2a import phase1
from delta_v2a.config import ConfigError, SharedWordWarning, check_config, load_config

DEFAULTS = load_config(ROOT / "workflow/schemas/config.schema.yaml", ROOT / "config/config.yaml")
BASE = phase1.Options.from_config(DEFAULTS["phase1"])


def options(**kw) -> phase1.Options:
    """The config's defaults with a few fields changed (the defaults live in the schema)."""
    return dataclasses.replace(BASE, **kw)


def _side(synonyms, rng, n_files, n_int, signal, noise):
    """Deltas of effect e = signal · unit(centred anchor_e) + isotropic noise, every file ×
    effect × intensity: an effect that really moves the embedding toward its words."""
    anchors = phase1.anchor_of(synonyms, True)
    dirs = anchors / np.linalg.norm(anchors, axis=1, keepdims=True)
    n_eff, dim = dirs.shape
    f, e, k = (
        a.ravel() for a in np.meshgrid(*map(np.arange, (n_files, n_eff, n_int)), indexing="ij")
    )
    delta = signal * dirs[e] + noise / np.sqrt(dim) * rng.standard_normal((f.size, dim))
    names = [f"e{i}" for i in range(n_eff)]
    return phase1.Side(delta, e, k, f, n_files, names, [f"k{i}" for i in range(n_int)])


def _world(seed, *, plant=0.0, n_eff=3, n_syn=5, dim=12, n_files=8, n_int=1):
    """Words i.i.d. in every text space (no pair) unless ``plant``: then image effect 0's and
    audio effect 0's words in the bridge space share a direction c with weight ``plant``."""
    rng = np.random.default_rng(seed)
    words = [[rng.standard_normal((n_syn, dim)) for _ in range(n_eff)] for _ in range(4)]
    img_clip, aud_clap, br_img, br_aud = words
    if plant:
        c = rng.standard_normal(dim)
        br_img[0] = br_img[0] + plant * c
        br_aud[0] = br_aud[0] + plant * c
    image = _side(img_clip, rng, n_files, n_int, 1.0, 1.0)
    audio = _side(aud_clap, rng, n_files, n_int, 1.0, 1.0)
    return phase1.Inputs(image, audio, img_clip, aud_clap, {"audio": (br_img, br_aud)})


# --------------------------------------------------------------------------- centring


def test_common_component_makes_raw_anchors_pick_the_wrong_pair_centring_fixes_it():
    """Every anchor = 3·c (the template's "an adjective was added") + its own part; image 0's
    own part e0 is audio 0's (3·e0, same direction). Audio effect 1's own part is tiny, so it
    is nearly pure c and raw cosines favour it (0.95 against 0.89 for the true partner); after
    centring the common part is gone and image 0 meets audio 0."""
    e = np.eye(6)
    c = e[5]
    img = [np.array([3 * c + e[0]]), np.array([3 * c + e[1]]), np.array([3 * c + e[2]])]
    aud = [np.array([3 * c + 3 * e[0]]), np.array([3 * c + 0.1 * e[3]]), np.array([3 * c + e[2]])]
    raw = phase1.batched_cosine_matrix(phase1.anchor_of(img, False), phase1.anchor_of(aud, False))
    cen = phase1.batched_cosine_matrix(phase1.anchor_of(img, True), phase1.anchor_of(aud, True))
    assert (raw > 0.6).all()  # the common part makes every pair look alike
    assert raw[0].argmax() == 1  # raw: image 0 -> audio 1, the wrong pair
    assert cen[0].argmax() == 0 and cen[2].argmax() == 2  # centred: the right pairs
    np.testing.assert_allclose(
        phase1.center(np.stack([x[0] for x in img])).mean(axis=0), 0, atol=1e-12
    )


# --------------------------------------------------------------------------- null and power


def test_null_without_a_pair_is_calibrated_over_200_seeds():
    """Effects are real on both sides (sim1, sim2 far from their nulls) but the bridge words are
    exchangeable: no pair exists. Then p = p_sim3 is the binding test and must be uniform:
    the share of cells with p < 0.05 lies in [0.01, 0.10], and Holm across the 9 cells chooses
    no pair in at least 90 % of seeds."""
    opts = options(text_bridge="audio", n_permutations=399, n_bootstrap=2, shared_words="warn")
    ps, seeds_with_pair = [], 0
    for seed in range(200):
        with pytest.warns(UserWarning, match="legacy nulls"):
            out = phase1.discover(_world(seed), opts)
        ps.append(out["p"].ravel())
        seeds_with_pair += bool(out["chosen_pairs"])
    share = float((np.concatenate(ps) < 0.05).mean())
    print(f"null: share of cells with p < 0.05 = {share:.3f}; seeds with a pair {seeds_with_pair}")
    assert 0.01 <= share <= 0.10
    assert seeds_with_pair <= 20


def test_planted_pair_is_found_with_p_below_001():
    """Legacy nulls (discover without foils). Effect size: 4 effects × 6 words per side, 16-d;
    the words of image 0 and audio 0 in the bridge space are N(0, I) + 1.5·c with one shared
    c ~ N(0, I), i.e. each planted word has an expected cosine of 1.5/√(1 + 1.5²) = 0.83 with
    c. Over 10 seeds the pair's p < 0.01, and Holm across the 16 cells chooses it in at least 8
    (its p sits near the Holm threshold 0.05/16; the foil-null version of this test is in
    phase1_nulls_test.py)."""
    opts = options(text_bridge="audio", n_permutations=999, n_bootstrap=2, shared_words="warn")
    chosen = 0
    for seed in range(10):
        with pytest.warns(UserWarning, match="legacy nulls"):
            out = phase1.discover(_world(seed, plant=1.5, dim=16, n_syn=6, n_eff=4), opts)
        assert out["p"][0, 0] < 0.01, seed
        chosen += any(
            (c["image_effect"], c["audio_effect"]) == ("e0", "e0") for c in out["chosen_pairs"]
        )
    assert chosen >= 8


def test_label_permutation_p_is_uniform_under_exchangeable_effects():
    """All effects' deltas from one distribution: p_sim1 is uniform (share < 0.05 about 0.05)."""
    opts = options(n_permutations=199)
    ps = []
    for seed in range(150):
        rng = np.random.default_rng(seed)
        delta = rng.standard_normal((8 * 3 * 2, 6))
        f, e, k = (
            a.ravel() for a in np.meshgrid(np.arange(8), np.arange(3), np.arange(2), indexing="ij")
        )
        anchors = rng.standard_normal((3, 6))
        null = phase1.label_permutation_sim(delta, e, f * 2 + k, anchors, opts.n_permutations, rng)
        proto = phase1.prototypes(delta, e, k, ["a", "b", "c"], ["lo", "hi"]).pooled
        ps.append(phase1.perm_pvalue(phase1.batched_rowwise_cosine(proto, anchors), null))
    share = float((np.concatenate(ps) < 0.05).mean())
    assert 0.02 <= share <= 0.09


def test_permutations_stay_within_their_strata():
    rng = np.random.default_rng(0)
    strata = np.array([0, 0, 1, 1, 1, 2, 0, 2])
    perm = phase1.strata_permutations(strata, 50, rng)
    assert (np.sort(perm, axis=1) == np.arange(8)).all()  # each row is a permutation
    assert (strata[perm] == strata[None, :]).all()  # ... that never leaves a stratum


def test_regrouped_anchors_keep_group_sizes_and_use_every_word_once():
    vecs = [np.eye(5)[:2], np.eye(5)[2:5]]
    null = phase1.regroup(vecs, 20, np.random.default_rng(0))
    assert null.shape == (20, 2, 5)
    np.testing.assert_allclose(null[:, 0].sum(axis=1), 1.0)  # mean of 2 unit words
    np.testing.assert_allclose(2 * null[:, 0] + 3 * null[:, 1], 1.0)  # every word exactly once


# --------------------------------------------------------------------------- p-values


def test_permutation_pvalue_counts_the_observed_labelling():
    null = np.array([[0.1], [0.5], [0.9], [0.3]])
    np.testing.assert_allclose(phase1.perm_pvalue(np.array([0.5]), null), [(1 + 2) / 5])
    np.testing.assert_allclose(phase1.perm_pvalue(np.array([2.0]), null), [1 / 5])
    assert np.isnan(phase1.perm_pvalue(np.array([np.nan]), null)).all()


def test_holm_and_bh_match_hand_computation():
    p = np.array([[0.01, 0.04], [0.03, np.nan]])
    # sorted 0.01, 0.03, 0.04 with m = 3; Holm: 3·0.01, max(2·0.03, .), max(1·0.04, 0.06)
    np.testing.assert_allclose(phase1.adjust(p, "holm"), [[0.03, 0.06], [0.06, np.nan]])
    # BH: 0.01·3/1 = 0.03, 0.03·3/2 = 0.045, 0.04·3/3 = 0.04 -> step-up minimum: 0.03, 0.04, 0.04
    np.testing.assert_allclose(phase1.adjust(p, "bh"), [[0.03, 0.04], [0.04, np.nan]])
    with pytest.raises(ValueError, match="correction"):
        phase1.adjust(p, "bonferroni")


def test_intersection_union_and_pair_choice():
    p = phase1.intersection_union(
        np.array([[0.001], [0.2]]), np.array([[0.001, 0.002]]), np.array([[0.01, 0.001], [0, 0]])
    )
    np.testing.assert_allclose(p, [[0.01, 0.002], [0.2, 0.2]])
    score = np.array([[0.2, 0.5], [0.4, 0.1]])
    chosen = phase1.choose_significant(
        score, np.array([[0.01, 0.02], [0.3, 0.01]]), 0.05, ["blur", "contrast"], ["lpf", "reverb"]
    )
    # blur's best (reverb) is significant; contrast's best (lpf) is not, so its significant
    # runner-up (reverb, rank 2) is chosen (the rule changed: the test, not the rank, decides)
    assert [
        {k: c[k] for k in ("image_effect", "audio_effect", "score", "rank_in_row")} for c in chosen
    ] == [
        {"image_effect": "blur", "audio_effect": "reverb", "score": 0.5, "rank_in_row": 1},
        {"image_effect": "contrast", "audio_effect": "reverb", "score": 0.1, "rank_in_row": 2},
    ]


def test_both_bridge_takes_the_smaller_cosine_and_the_larger_p():
    """``both`` claims that BOTH towers put the lists close: sim3 is the smaller cosine (no
    seed-dependent z-scores inside the score) and p the larger p (intersection-union)."""
    cos = {"audio": np.array([[0.02, -0.3]]), "image": np.array([[0.2, 0.4]])}
    p = {"audio": np.array([[0.01, 0.5]]), "image": np.array([[0.04, 0.001]])}
    np.testing.assert_allclose(phase1.bridge_value(cos, "both"), [[0.02, -0.3]])
    np.testing.assert_allclose(phase1.bridge_pvalue(p, "both"), [[0.04, 0.5]])
    np.testing.assert_allclose(phase1.bridge_value(cos, "image"), cos["image"])


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_interval_covers_the_true_sim1_near_the_nominal_rate():
    """Deltas = μ_e + isotropic noise, so E[Δe/‖Δe‖] is parallel to μ_e and the true sim1 is
    cos(μ_e, anchor_e). Over 150 data sets × 3 effects (40 files each), the 90 % basic interval
    (files resampled, 400 draws) covers it at 0.884 (0.809 for the plain percentile interval,
    which inherits the shrinkage of a cosine of a noisy mean): asserted in [0.85, 0.95]."""
    covered, covered_pct, total = 0, 0, 0
    for seed in range(150):
        rng = np.random.default_rng(seed)
        n_files, n_eff, dim = 40, 3, 8
        mu = rng.standard_normal((n_eff, dim))
        anchors = mu + 1.2 * rng.standard_normal((n_eff, dim))
        truth = phase1.batched_rowwise_cosine(mu, anchors)
        f, e = (a.ravel() for a in np.meshgrid(np.arange(n_files), np.arange(n_eff), indexing="ij"))
        delta = mu[e] + 2.0 * rng.standard_normal((f.size, dim))
        fs = phase1.file_sums(delta, f, e, n_files, n_eff)
        proto = phase1.prototypes(delta, e, np.zeros_like(e), ["a", "b", "c"], ["k"]).pooled
        est = phase1.batched_rowwise_cosine(proto, anchors)
        draws = phase1.bootstrap_sim(fs, anchors, 400, rng)
        lo, hi = phase1.basic_interval(est, draws, 0.90, (-1, 1))
        covered += int(((lo <= truth) & (truth <= hi)).sum())
        plo, phi = phase1.percentile_interval(draws, 0.90)
        covered_pct += int(((plo <= truth) & (truth <= phi)).sum())
        total += n_eff
    rate = covered / total
    print(f"bootstrap 90% coverage: basic {rate:.3f}, percentile {covered_pct / total:.3f}")
    assert 0.85 <= rate <= 0.95


def test_file_sums_bootstrap_with_unit_weights_reproduces_the_prototype():
    rng = np.random.default_rng(0)
    delta = rng.standard_normal((12, 4))
    delta[3] = 0.0  # no direction: left out, as in prototypes()
    f, e = np.repeat(np.arange(6), 2), np.tile([0, 1], 6)
    fs = phase1.file_sums(delta, f, e, 6, 2)
    proto = phase1.prototypes(delta, e, np.zeros(12, dtype=int), ["a", "b"], ["k"]).pooled
    np.testing.assert_allclose(
        fs.sums.sum(axis=0) / fs.counts.sum(axis=0)[:, None], proto, rtol=1e-6
    )
    assert fs.counts.sum() == 11


# --------------------------------------------------------------------------- shared words


def test_shared_word_warning_is_one_console_line():
    import io

    from delta_v2a.config import check_config_for_console

    cfg = copy.deepcopy(DEFAULTS)
    cfg["phase1"]["shared_words"] = "warn"
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SharedWordWarning)  # it is printed, never re-raised
        check_config_for_console(cfg, out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Warning: phase1.synonyms: image and audio")
    cfg["phase1"]["shared_words"] = "drop"
    out = io.StringIO()
    check_config_for_console(cfg, out)
    assert out.getvalue() == ""


def test_shared_word_check_names_the_words_and_can_refuse():
    cfg = copy.deepcopy(DEFAULTS)
    with warnings.catch_warnings():  # drop (the default): Phase 1 removes them, no warning
        warnings.simplefilter("error", SharedWordWarning)
        check_config(cfg)
    cfg["phase1"]["shared_words"] = "warn"
    with pytest.warns(SharedWordWarning, match=r"share 'bright', 'dull'.*drop removes") as got:
        check_config(cfg)
    (line,) = [str(w.message) for w in got if w.category is SharedWordWarning]
    assert "\n" not in line and len(line) <= 300 and "phase1.shared_words: drop" in line
    cfg["phase1"]["shared_words"] = "error"
    with pytest.raises(ConfigError, match=r"phase1\.synonyms.*'dull'.*'muted'"):
        check_config(cfg)
    clean = copy.deepcopy(DEFAULTS)
    for m in ("image", "audio"):
        for fx in clean["phase1"]["synonyms"][m]:
            clean["phase1"]["synonyms"][m][fx] = [f"{m}{fx}word{i}" for i in range(5)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", SharedWordWarning)
        check_config(clean)


def test_content_words_split_hyphens_and_drop_function_words():
    assert phase1.content_words("out of focus") == {"focus"}
    assert phase1.content_words("Low-contrast") == {"low", "contrast"}
    words = phase1.shared_words({"blur": ["soft-focus", "hazy"]}, {"lpf": ["soft", "dark"]})
    assert words == {"soft": ["audio.lpf: soft", "image.blur: soft-focus"]}


def test_sim3_without_shared_words_equals_a_hand_computation():
    """Image blur: [blurry, dull]; audio lpf: [dull, dark], reverb: [echoey]. 'dull' is shared,
    so without it blur's anchor is the 'blurry' vector and lpf's the 'dark' vector; centred
    over the effects, sim3 and the score are then computed by hand."""
    v = {
        w: np.array(x, dtype=float)
        for w, x in {
            "blurry": [1, 0, 0],
            "dull": [0, 1, 0],
            "bright": [0, 0, 1],
            "dark": [1, 1, 0],
            "echoey": [0, 0, 2],
        }.items()
    }
    img_syn = {"blur": ["blurry", "dull"], "brightness": ["bright"]}
    aud_syn = {"lpf": ["dull", "dark"], "reverb": ["echoey"]}
    words = phase1.shared_words(img_syn, aud_syn)
    assert list(words) == ["dull"]
    keep = tuple(list(phase1.without_shared(s, words).values()) for s in (img_syn, aud_syn))
    img = [np.stack([v[w] for w in s]) for s in img_syn.values()]
    aud = [np.stack([v[w] for w in s]) for s in aud_syn.values()]
    got = phase1._sim3_observed({"audio": (img, aud)}, True, keep)["audio"]
    # by hand: image anchors blurry (1,0,0), bright (0,0,1), mean (.5,0,.5): centred ±(.5,0,-.5)
    # audio anchors dark (1,1,0), echoey (0,0,2), mean (.5,.5,1): centred ±(.5,.5,-1)
    a, b = np.array([0.5, 0, -0.5]), np.array([0.5, 0.5, -1.0])
    cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    np.testing.assert_allclose(got, [[cos, -cos], [-cos, cos]])
    score = phase1.combine(np.array([0.5, 0.2]), np.array([0.4, 0.9]), got)
    assert score[0, 0] == pytest.approx(0.5 * 0.4 * cos) and score[0, 1] == 0


def test_old_tower_names_get_the_new_one_in_one_line():
    for old, new in (("clap", "audio"), ("clip", "image")):
        cfg = copy.deepcopy(DEFAULTS)
        cfg["phase1"]["text_bridge"] = old
        with pytest.raises(ConfigError, match=rf"text_bridge: '{old}' is now '{new}'") as err:
            check_config(cfg)
        assert "\n" not in str(err.value)
