"""apply's gate (docs/methods.md §6.7) on small synthetic text embeddings whose geometry is
known: which descriptions it accepts, what it refuses and why, and that it is chosen on
validation only."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest
from phase3_utils import TEMPLATES, WORDS

from delta_v2a.phase3 import artifact
from delta_v2a.phase3.calibrate import (
    NEAR_MISS_EFFECTS,
    apply_calibration,
    choose_gate,
    gate_texts,
    nearest_reference,
    template_roles,
)
from delta_v2a.phase3.dataset import CONTROL_DESCRIPTIONS, describe

DIM = 96


def _direction(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(DIM)
    return v / np.linalg.norm(v)


class World:
    """A text tower with planted meaning: embed(text) = effect direction + ``level`` × the
    level word's direction + ``noise`` × the text's own direction. ``blur_like`` makes blur's
    direction that cosine from contrast's (a tower that confuses the two)."""

    def __init__(self, seed=0, level=0.8, noise=0.3, blur_like=0.0):
        rng = np.random.default_rng(seed)
        effects = [*TEMPLATES, *NEAR_MISS_EFFECTS]
        self.effect = {e: _direction(rng) for e in effects}
        if blur_like:
            c, o = self.effect["contrast"], self.effect["blur"]
            o = o - (o @ c) * c
            self.effect["blur"] = blur_like * c + np.sqrt(1 - blur_like**2) * o / np.linalg.norm(o)
        self.word = {w: _direction(rng) for w in WORDS}
        self.level, self.noise, self.seed = level, noise, seed
        self.meaning: dict[str, tuple[str | None, str | None]] = {}

    def add(self, text, effect, word):
        self.meaning[text] = (effect, word)

    def embed(self, texts):
        out = []
        for t in texts:
            effect, word = self.meaning[t]
            digest = hashlib.sha256(f"{self.seed}|{t}".encode()).digest()
            own = np.random.default_rng(int.from_bytes(digest[:8], "little"))
            v = self.noise * _direction(own)
            if effect is not None:
                v = v + self.effect[effect] + self.level * self.word[word]
            out.append(v / np.linalg.norm(v))
        return np.asarray(out)


def _setup(world: World, effect="contrast"):
    """A decoder trained on ``effect``'s first two templates, its gate rows, all embedded."""
    trained = [
        {"text": describe(t, w), "effect": effect, "level_word": w}
        for t in TEMPLATES[effect][:2]
        for w in WORDS
    ]
    rows = gate_texts(TEMPLATES, [effect], WORDS, 1, 1)
    for r in [*trained, *rows]:
        world.add(r["text"], r["effect"], r["level_word"])
    texts = [r["text"] for r in trained] + [r["text"] for r in rows]
    return trained, rows, texts, world.embed(texts)


def _decoder(cal, effect="contrast"):
    """What check_description reads of a loaded decoder."""
    return SimpleNamespace(
        gate=cal,
        level_words=WORDS,
        pairs=[{"image_effect": effect, "audio_effect": "highshelf"}],
        templates={effect: TEMPLATES[effect]},
    )


def test_template_roles_and_gate_texts_keep_validation_and_test_apart():
    assert template_roles(4, 1, 1) == ["seen", "seen", "val", "test"]
    assert template_roles(3, 1, 0) == ["seen", "seen", "test"]
    assert template_roles(1, 1, 1) == ["test"]
    rows = gate_texts(TEMPLATES, ["contrast"], WORDS, 1, 1)
    texts = [r["text"] for r in rows]
    assert len(texts) == len(set(texts))
    by = {r["text"]: r["role"] for r in rows}
    assert by["a very faded photo"] == "val_paraphrase"
    assert by["a very washed-out photo"] == "test_paraphrase"
    assert by["an extremely blurry photo"] == "reference"  # blur: not trained here
    assert by["a very fuzzy photo"] == "val_near_miss" and by["a very out-of-focus photo"] == (
        "test_near_miss"
    )
    assert by["a very grainy photo"] == "reference" and by["a very speckled photo"] == (
        "test_near_miss"
    )
    assert all(by[c] == "control" for c in CONTROL_DESCRIPTIONS)
    # the trained effect's seen templates are not gate texts: they come from the train split
    assert "a very low-contrast photo" not in by and "a very flat picture" not in by


def test_choose_gate_known_answer():
    correct = [(0.9, 0.3), (0.8, 0.1), (0.7, 0.2)]
    wrong = [(0.75, 0.15)]
    # either refuse the wrong one by cosine (keeps 0.9 and 0.8) or by margin (keeps 0.9 and
    # 0.7): two each; the higher cosine floor wins the tie, then both tighten to the kept
    assert choose_gate(correct, wrong) == (0.8, 0.1)
    assert choose_gate(correct, []) == (0.7, 0.1)
    assert choose_gate([], wrong) == (2.0, 3.0)
    # a near miss above every paraphrase by cosine, but ambiguous: refused by the margin
    assert choose_gate([(0.5, 0.05)], [(0.9, 0.01)]) == (0.5, 0.05)
    # a near miss above on both: nothing can be accepted without it
    assert choose_gate([(0.5, 0.05)], [(0.9, 0.5)]) == (2.0, 3.0)


def test_nearest_reference_margin_is_over_another_meaning_only():
    emb = np.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0]])
    meanings = [("blur", "very"), ("blur", "very"), ("blur", "slightly")]
    k, cos, margin = nearest_reference(emb, meanings, np.array([1.0, 0.2, 0.0]))
    unit = np.array([1.0, 0.2, 0.0]) / np.linalg.norm([1.0, 0.2, 0.0])
    assert k == 1 and cos == pytest.approx(emb[1] @ unit / np.linalg.norm(emb[1]))
    assert margin == pytest.approx(cos - unit[1])  # the other level, not the same-meaning twin


def test_contrast_only_decoder_refuses_an_extremely_blurry_photo():
    """A tower that puts blur at cosine 0.9 from contrast: among the trained descriptions
    alone, "an extremely blurry photo" is nearest an extremely low-contrast one (what the old
    gate measured); with the references of the untrained effects it is refused by name."""
    world = World(blur_like=0.9)
    trained, rows, texts, emb = _setup(world)
    cal = apply_calibration(trained, rows, texts, emb, WORDS)
    blurry = "an extremely blurry photo"
    v = emb[texts.index(blurry)]
    near = trained[int(np.argmax(emb[: len(trained)] @ v))]
    assert (near["effect"], near["level_word"]) == ("contrast", "extremely")
    acc = artifact.check_description(_decoder(cal), blurry, v)
    assert not acc.accepted and acc.reason == "untrained_effect" and acc.nearest_effect == "blur"
    message = artifact.refusal_message(blurry, acc, _decoder(cal))
    assert "is nearest to 'an extremely blurry photo' (blur, extremely; cosine 1.0000)" in message
    assert "\n" not in message
    # and the validation figures say what the gate did
    val = cal["validation"]
    assert val["n_paraphrases"] == len(WORDS) and val["paraphrases_accepted_wrong_meaning"] == 0
    assert val["controls_refused"] == val["n_controls"] == len(CONTROL_DESCRIPTIONS)
    assert val["near_misses_refused"] == val["n_near_misses"]


def test_a_description_of_the_wrong_level_is_never_mapped_silently():
    """Level words barely move the tower (level 0.25, noise 0.5), so paraphrases are often
    nearest a description of another level (7 of 48 over these six worlds). Every one of
    them names its level word and is refused as "other_level"; whatever is accepted is
    nearest a description of its own effect and level, and on validation none has another
    meaning."""
    wrong = 0
    for seed in range(6):
        world = World(seed=seed, level=0.25, noise=0.5)
        trained, rows, texts, emb = _setup(world)
        cal = apply_calibration(trained, rows, texts, emb, WORDS)
        dec = _decoder(cal)
        for p in (r for r in rows if r["role"].endswith("paraphrase")):
            acc = artifact.check_description(dec, p["text"], emb[texts.index(p["text"])])
            if acc.nearest_effect == "contrast" and acc.nearest_level != p["level_word"]:
                wrong += 1
                assert not acc.accepted and acc.reason == "other_level"
                message = artifact.refusal_message(p["text"], acc, dec)
                assert f"names level {p['level_word']} but is nearest to {acc.nearest!r}" in message
            if acc.accepted:
                assert (acc.nearest_effect, acc.nearest_level) == ("contrast", p["level_word"])
        assert cal["validation"]["paraphrases_accepted_wrong_meaning"] == 0
    assert wrong == 7  # the planted geometry does produce wrong-level neighbours


def test_wrong_level_without_a_level_word_is_refused_by_the_margin():
    """A paraphrase naming no level word, embedded halfway between two levels: the margin
    over the other level is ~0, under the calibrated margin, so it is refused."""
    world = World(seed=1, level=0.8, noise=0.2)
    trained, rows, texts, emb = _setup(world)
    cal = apply_calibration(trained, rows, texts, emb, WORDS)
    assert cal["validation"]["paraphrases_accepted"] > 0 and cal["margin"] > 0
    t_emb = {r["text"]: e for r, e in zip(trained, emb[: len(trained)], strict=True)}
    halfway = t_emb["a slightly low-contrast photo"] + t_emb["a very low-contrast photo"]
    acc = artifact.check_description(_decoder(cal), "a somewhat low-contrast photo", halfway)
    assert acc.nearest_effect == "contrast" and acc.margin < cal["margin"]
    assert not acc.accepted and acc.reason in ("margin", "cosine")


def test_threshold_does_not_depend_on_test_paraphrases():
    world = World(seed=2, level=0.5, noise=0.4, blur_like=0.6)
    trained, rows, texts, emb = _setup(world)
    cal = apply_calibration(trained, rows, texts, emb, WORDS)
    changed = emb.copy()
    rng = np.random.default_rng(7)
    for i, r in enumerate(rows, start=len(trained)):
        if r["role"].startswith("test_"):
            changed[i] = _direction(rng)
    again = apply_calibration(trained, rows, texts, changed, WORDS)
    assert (again["threshold"], again["margin"]) == (cal["threshold"], cal["margin"])
    assert again["validation"] == cal["validation"]
    assert again["test"] != cal["test"]  # the test figures are read from them, and only those
    # whereas moving a validation paraphrase does move the gate
    moved = emb.copy()
    val = [i for i, r in enumerate(rows, start=len(trained)) if r["role"] == "val_paraphrase"]
    moved[val] = [_direction(rng) for _ in val]
    assert apply_calibration(trained, rows, texts, moved, WORDS)["validation"] != cal["validation"]


def test_a_tower_that_cannot_separate_refuses_every_paraphrase():
    """Pure noise: no meaning in the geometry. Controls and near misses land on trained
    descriptions as often as paraphrases do, and the gate accepts trained descriptions only
    if nothing else can be told apart."""
    world = World(seed=3, level=0.0, noise=1.0)
    world.effect = {e: np.zeros(DIM) for e in world.effect}
    trained, rows, texts, emb = _setup(world)
    cal = apply_calibration(trained, rows, texts, emb, WORDS)
    val = cal["validation"]
    assert val["paraphrases_accepted_wrong_meaning"] == 0
    assert val["controls_refused"] == val["n_controls"]
    dec = _decoder(cal)
    exact = artifact.check_description(dec, trained[0]["text"], emb[0])
    assert exact.accepted and exact.exact and exact.reason == "exact"


def test_old_model_files_without_references_are_named():
    dec = SimpleNamespace(gate={"threshold": 0.5, "trained_descriptions": []})
    with pytest.raises(ValueError, match="predates apply's near-miss gate"):
        artifact.check_description(dec, "a very blurry photo", np.ones(3))
