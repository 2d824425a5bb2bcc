"""The planted world (issue 25): embedders with a built-in answer, and Phase 1 finding it.

Media are generated here (seeded), so the test needs neither the demo media nor a model.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from workflow_utils import ROOT

from delta_v2a import phase1, planted
from delta_v2a.config import effect_params, load_config
from delta_v2a.effects import apply_audio_effect, apply_image_effect
from delta_v2a.models import load_embedder
from delta_v2a.provenance import merge_model_meta

DEFAULTS = load_config(ROOT / "workflow/schemas/config.schema.yaml", ROOT / "config/config.yaml")
SR, WINDOW, SIZE = planted.SAMPLING_RATE, planted.WINDOW_SAMPLES, planted.IMAGE_SIZE
EFFECTS = {m: list(DEFAULTS["run_effects"][m]) for m in ("image", "audio")}
INTENSITIES = list(DEFAULTS["intensities"])


def photos(n: int, seed: int = 0) -> list[np.ndarray]:
    """Photo-like images: smooth colour fields plus edges and texture, in [0.05, 0.85]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    out = []
    for _ in range(n):
        base = rng.uniform(0.2, 0.6, 3) + 0.2 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * xx)[
            ..., None
        ] * rng.uniform(-1, 1, 3)
        edges = 0.15 * (np.sin(2 * np.pi * rng.uniform(8, 20) * (xx + rng.uniform() * yy)) > 0)
        texture = 0.05 * rng.standard_normal((SIZE, SIZE, 1))
        out.append(np.clip(base + edges[..., None] + texture, 0.05, 0.85).astype(np.float32))
    return out


def clips(n: int, seed: int = 0, length: int = WINDOW) -> list[np.ndarray]:
    """Music-like clips: notes (harmonics rolling off like real instruments, most energy below
    4 kHz as in the demo music) with decaying envelopes, plus a little hiss."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / SR
    out = []
    for _ in range(n):
        y = np.zeros(length)
        scale = rng.choice(24, size=5, replace=False)  # each piece its own notes (its nuisance)
        for start in np.arange(0, length / SR, rng.uniform(0.2, 0.5)):
            f0 = 110 * 2 ** (rng.choice(scale) / 12)
            env = np.where(t >= start, np.exp(-(t - start) * rng.uniform(2, 6)), 0.0)
            y += env * sum(np.sin(2 * np.pi * f0 * h * t) * 0.7**h for h in range(1, 25))
        y += 0.001 * rng.standard_normal(length)
        out.append((0.2 * y / np.sqrt(np.mean(y**2))).astype(np.float32))
    return out


@pytest.fixture(scope="module")
def towers():
    return {
        m: load_embedder(m, f"planted:{m}", family="planted", device="cpu", dtype="fp32")
        for m in EFFECTS
    }


def apply(modality: str, effect: str, item: np.ndarray, params, preroll: int = 0):
    if modality == "image":
        return apply_image_effect(effect, item, params)
    return apply_audio_effect(effect, item, SR, params, preroll=preroll)


# --------------------------------------------------------------------------- loading, interface


def test_load_embedder_gives_planted_towers_marked_not_science(towers):
    img, aud = towers["image"], towers["audio"]
    assert isinstance(img, planted.PlantedImageEmbedder) and img.input_size == SIZE
    assert isinstance(aud, planted.PlantedAudioEmbedder)
    assert (aud.sampling_rate, aud.window_samples) == (SR, WINDOW)
    assert img.dim == aud.dim == planted.PLANTED_DIM and img.info.tiny
    meta = merge_model_meta({"modality": m, "model": t.info.to_dict()} for m, t in towers.items())
    assert meta["not_science"] and "NOT SCIENCE" in meta["note"] and "planted" in meta["note"]
    assert img.info.family == aud.info.family == "planted" and not img.info.science
    # the family, not a prefix of the name, picks the planted world
    with pytest.raises(FileNotFoundError, match="fetch-models"):
        load_embedder("image", "planted:image")
    with pytest.raises(ValueError, match="unknown model family 'plant'"):
        load_embedder("image", "planted:image", family="plant")


def test_embeddings_are_deterministic_unit_rows_of_the_right_shape(towers):
    for modality, items in (("image", photos(3)), ("audio", clips(2))):
        tower = towers[modality]
        a = tower.embed(items, batch_size=2)
        b = tower.embed_prepared([tower.prepare(x, i) for i, x in enumerate(items)])
        assert a.shape == (len(items), tower.dim) and a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-6)
        assert np.max(a[0] @ a[1:].T) < 0.95, "files must differ (the nuisance vector)"
        texts = tower.embed_texts(["a blurry photo", "a muffled song"])
        assert texts.shape == (2, tower.dim)
        np.testing.assert_array_equal(
            texts, tower.embed_texts(["a blurry photo", "a muffled song"])
        )
    with pytest.raises(ValueError, match="expected float"):
        towers["image"].embed([np.zeros((SIZE, SIZE, 3), dtype=np.uint8)])


def test_concept_lexicon_one_meaning_per_word():
    assert planted.concept_of("out of focus") == planted.concept_of("muffled") == "soft"
    assert planted.concept_of("bright") == planted.concept_of("treble-boosted") == "bright"
    assert planted.concept_of("saturated") is None  # colour or distortion: no planted meaning
    words = [w for ws in planted.CONCEPTS.values() for w in ws]
    assert len(words) == len(set(words))


# --------------------------------------------------------------------------- planted directions


def mean_delta_cosine(tower, modality, effect, items, level, direction, preroll=0):
    params = effect_params(DEFAULTS, modality, effect, level)
    orig = tower.embed([x[preroll:] for x in items])
    moved = tower.embed([apply(modality, effect, x, params, preroll) for x in items])
    delta = moved - orig
    delta /= np.linalg.norm(delta, axis=1, keepdims=True)
    return float(np.mean(delta @ direction))


@pytest.mark.parametrize("level", INTENSITIES)
def test_blur_moves_the_image_embedding_along_the_soft_direction(towers, level):
    soft = planted._concept_directions("image", planted.PLANTED_DIM)["soft"]
    bright = planted._concept_directions("image", planted.PLANTED_DIM)["bright"]
    images = photos(4)
    assert mean_delta_cosine(towers["image"], "image", "blur", images, level, soft) > 0.8
    assert mean_delta_cosine(towers["image"], "image", "brightness", images, level, bright) > 0.8


def best_concept(tower, modality, effect, items, level, preroll=0) -> tuple[str, float]:
    """The concept whose direction the effect's unit deltas follow best, and that cosine."""
    dirs = planted._concept_directions(modality, planted.PLANTED_DIM)
    cos = {
        c: mean_delta_cosine(tower, modality, effect, items, level, d, preroll)
        for c, d in dirs.items()
    }
    best = max(cos, key=cos.__getitem__)
    return best, cos[best]


@pytest.mark.parametrize("level", INTENSITIES)
def test_lowpass_moves_the_audio_embedding_along_the_soft_direction(towers, level):
    """Physics, not a copy of the direction: a low-pass also takes mids at low cutoffs, so the
    delta follows "soft" (less air, fewer mids) closely but not exactly."""
    pre = SR // 10
    items = clips(2, length=WINDOW + pre)
    concept, cos = best_concept(towers["audio"], "audio", "lpf", items, level, pre)
    assert concept == "soft" and cos > 0.4  # measured 0.74 (4 kHz) to 0.44 (800 Hz)
    concept, cos = best_concept(towers["audio"], "audio", "highshelf", items, level, pre)
    assert concept == "bright" and cos > 0.8


# --------------------------------------------------------------------------- text anchors


def specs(categories=("living", "objects"), genres=("chorale", "folk")):
    p1 = DEFAULTS["phase1"]
    contexts = {"image": categories, "audio": genres}
    return {
        m: phase1.AnchorSpec(
            effect_template=p1["templates"][m]["effect"],
            neutral_template=p1["templates"][m]["neutral"],
            context_field="category" if m == "image" else "genre",
            synonyms={e: p1["synonyms"][m][e] for e in EFFECTS[m]},
            contexts=list(contexts[m]),
        )
        for m in EFFECTS
    }


def bridges(towers, spec):
    out = {}
    for name, modality in (("image", "image"), ("audio", "audio")):
        anchors, _ = phase1.text_anchors(towers[modality].embed_texts, spec)
        out[name] = (anchors["image"].synonym_vectors, anchors["audio"].synonym_vectors)
    return out


def test_anchors_built_as_phase1_builds_them_link_only_the_planted_pairs(towers):
    spec = specs()
    img_fx, aud_fx = EFFECTS["image"], EFFECTS["audio"]
    shared = phase1.shared_words(spec["image"].synonyms, spec["audio"].synonyms)
    keep = [list(phase1.without_shared(spec[m].synonyms, shared).values()) for m in EFFECTS]
    for name, (img, aud) in bridges(towers, spec).items():
        sim3 = phase1.cosine_matrix(phase1.anchor_of(img, True), phase1.anchor_of(aud, True))
        a = phase1.center_finite(phase1.masked_anchors(img, keep[0]))
        b = phase1.center_finite(phase1.masked_anchors(aud, keep[1]))
        no_shared = phase1.cosine_matrix(a, b)
        for i, j in np.ndindex(sim3.shape):
            if (img_fx[i], aud_fx[j]) in planted.PLANTED_PAIRS:
                assert sim3[i, j] > 0.7 and no_shared[i, j] > 0.7, (name, i, j)
            else:  # no planted link: at most the small positive left by centring (docs §9)
                assert no_shared[i, j] < 0.35, (name, img_fx[i], aud_fx[j], no_shared[i, j])


# --------------------------------------------------------------------------- end to end


def side(tower, modality, items, preroll=0) -> phase1.Side:
    """Deltas of every (effect, level) of the default config, as the extraction jobs make them."""
    orig = tower.embed([x[preroll:] for x in items])
    deltas, codes = [], []
    for e, effect in enumerate(EFFECTS[modality]):
        for k, level in enumerate(INTENSITIES):
            params = effect_params(DEFAULTS, modality, effect, level)
            moved = tower.embed([apply(modality, effect, x, params, preroll) for x in items])
            deltas.append(moved - orig)
            codes += [(e, k, f) for f in range(len(items))]
    c = np.array(codes)
    return phase1.Side(
        np.concatenate(deltas), c[:, 0], c[:, 1], c[:, 2], len(items), EFFECTS[modality],
        INTENSITIES,
    )  # fmt: skip


def test_phase1_discover_finds_exactly_the_planted_pairs(towers):
    pre = SR // 10
    spec = specs()
    clip_anchors, _ = phase1.text_anchors(towers["image"].embed_texts, spec)
    clap_anchors, _ = phase1.text_anchors(towers["audio"].embed_texts, spec)
    words = [w for m in EFFECTS for ws in spec[m].synonyms.values() for w in ws]
    foils = phase1.load_foils(exclude=words, min_words=5)  # the lists keep >= 5 under drop
    banks = {
        (t, m): phase1.embed_foils(towers[t].embed_texts, spec[m], foils)
        for t in EFFECTS
        for m in EFFECTS
    }  # (tower, templates) -> bank, as the job builds them
    shared = phase1.shared_words(spec["image"].synonyms, spec["audio"].synonyms)
    keep = tuple(list(phase1.without_shared(spec[m].synonyms, shared).values()) for m in EFFECTS)
    inputs = phase1.Inputs(
        side(towers["image"], "image", photos(6, seed=1)),
        side(towers["audio"], "audio", clips(4, seed=1, length=WINDOW + pre), pre),
        clip_anchors["image"].synonym_vectors,
        clap_anchors["audio"].synonym_vectors,
        bridges(towers, spec),
        keep,
        phase1.Foils(
            image=banks["image", "image"],
            audio=banks["audio", "audio"],
            bridges={t: (banks[t, "image"], banks[t, "audio"]) for t in EFFECTS},
        ),
    )
    opts = phase1.Options.from_config(DEFAULTS["phase1"])
    res = phase1.discover(inputs, dataclasses.replace(opts, n_permutations=200, n_bootstrap=100))
    found = {(c["image_effect"], c["audio_effect"]) for c in res["chosen_pairs"]}
    assert found == set(planted.PLANTED_PAIRS)
    # every effect is described by its own words in its own tower (audio saturation the least:
    # soft clipping also adds air and smears onsets), so a missing pair is sim3's doing
    assert (res["sim1"] > 0.3).all() and (res["sim2"] > 0.3).all()
    assert res["p_adjusted"][2:, :].min() > 0.05 and res["p_adjusted"][:, 2:].min() > 0.05
