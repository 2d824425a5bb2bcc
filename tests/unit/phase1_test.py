"""Phase 1: prototypes, synonym-expanded text anchors, sim1 × sim2 × sim3 (known answers),
the job on synthetic stores with stand-in text towers, and a real snakemake run."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from health_utils import health_report
from workflow_utils import ROOT

from delta_v2a import phase1
from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.config import ANCHOR_CONTEXT, ConfigError, check_config, load_config
from delta_v2a.jobs import phase1 as job
from delta_v2a.jobs.common import PipelineError
from delta_v2a.storage import DeltaStore, write_json

DEFAULTS = load_config(ROOT / "workflow/schemas/config.schema.yaml", ROOT / "config/config.yaml")


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


# --------------------------------------------------------------------------- prototypes


def test_prototypes_per_intensity_and_pooled_over_unit_deltas():
    delta = np.array(
        [
            [2.0, 0.0],  # effect 0, intensity 0
            [0.0, 3.0],  # effect 0, intensity 0
            [5.0, 0.0],  # effect 0, intensity 1
            [0.0, 0.0],  # effect 0, intensity 1: zero norm, no direction, left out
            [np.nan, 1.0],  # effect 1, intensity 0: non-finite, left out
            [0.0, -4.0],  # effect 1, intensity 0
        ]
    )
    p = phase1.prototypes(
        delta,
        np.array([0, 0, 0, 0, 1, 1]),
        np.array([0, 0, 1, 1, 0, 0]),
        ["blur", "brightness"],
        ["low", "high"],
    )
    assert p.per_intensity.shape == (2, 2, 2) and p.pooled.shape == (2, 2)
    np.testing.assert_allclose(p.per_intensity[0, 0], [0.5, 0.5])
    np.testing.assert_allclose(p.per_intensity[1, 0], [1.0, 0.0])
    np.testing.assert_allclose(p.per_intensity[0, 1], [0.0, -1.0])
    assert np.isnan(p.per_intensity[1, 1]).all()  # no delta at all: NaN, not a zero vector
    # pooled = mean of ALL unit deltas of the effect: (1,0), (0,1), (1,0) -> (2/3, 1/3)
    np.testing.assert_allclose(p.pooled[0], [2 / 3, 1 / 3])
    np.testing.assert_allclose(p.pooled[1], [0.0, -1.0])
    np.testing.assert_array_equal(p.counts, [[2, 1], [1, 0]])


# --------------------------------------------------------------------------- anchors


class FakeTextTower:
    """A stand-in text tower with known geometry: a prompt containing a synonym of group g
    embeds to unit(e[context] + e[g]); a neutral prompt to unit(e[context] + e[NEUTRAL]).
    Hence every anchor is exactly (e[g] − e[NEUTRAL]) / √2. A foil word (any other word)
    takes one of the spare axes 2, 4, 9, 11 by a stable hash of the word."""

    NEUTRAL = 3
    TEMPLATE_WORDS = frozenset({"a", "photo", "of", "song"})

    def _foil_dim(self, text: str) -> int | None:
        import zlib

        words = [w for w in text.lower().split() if w not in self.TEMPLATE_WORDS]
        words = [w for w in words if w not in self.contexts]
        return (2, 4, 9, 11)[zlib.crc32(" ".join(words).encode()) % 4] if words else None

    def __init__(self, dim: int, groups: dict[str, int], contexts: dict[str, int]):
        self.dim, self.groups, self.contexts = dim, groups, contexts
        self.calls: list[list[str]] = []

    def embed_texts(self, texts, batch_size: int = 64) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim))
        for row, text in enumerate(texts):
            ctx = [i for c, i in self.contexts.items() if c in text.lower().split()]
            grp = [i for w, i in self.groups.items() if w in text.split()]
            assert len(ctx) <= 1 and len(grp) <= 1, text
            out[row, ctx[0] if ctx else 10] += 1.0
            foil = self._foil_dim(text) if not grp else None
            out[row, grp[0] if grp else foil or self.NEUTRAL] += 1.0
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


TEMPLATES = DEFAULTS["phase1"]["templates"]
SYN = {
    "image": {"brightness": ["bright", "glowing"], "blur": ["blurry", "fuzzy"]},
    "audio": {"lpf": ["muffled", "dull"], "highshelf": ["crisp", "airy"]},
}
# In both text spaces the bridge puts blur next to lpf and brightness next to highshelf.
GROUPS = {"blurry": 0, "fuzzy": 0, "muffled": 0, "dull": 0}
GROUPS |= {"bright": 1, "glowing": 1, "crisp": 1, "airy": 1}
CONTEXTS = {"city": 5, "sea": 6, "jazz": 7, "folk": 8}


def spec(modality: str, contexts) -> phase1.AnchorSpec:
    return phase1.AnchorSpec(
        TEMPLATES[modality]["effect"],
        TEMPLATES[modality]["neutral"],
        ANCHOR_CONTEXT[modality],
        SYN[modality],
        contexts,
    )


def test_anchors_embed_each_distinct_prompt_once_in_one_call():
    tower = FakeTextTower(12, GROUPS, CONTEXTS)
    specs = {"image": spec("image", ["city", "sea"]), "audio": spec("audio", ["jazz", "folk"])}
    anchors, n = phase1.text_anchors(tower.embed_texts, specs)
    assert len(tower.calls) == 1
    sent = tower.calls[0]
    assert len(sent) == len(set(sent)) == n == 2 * (2 * 2 * 2 + 2)
    assert "A blurry photo of city" in sent and "A photo of sea" in sent
    assert "A muffled jazz song" in sent and "A folk song" in sent
    assert anchors["image"].effects == ["brightness", "blur"]  # the given order, not sorted
    assert anchors["image"].n_pairs == [4, 4]
    e = np.eye(12)
    np.testing.assert_allclose(anchors["image"].vectors[1], (e[0] - e[3]) / np.sqrt(2), atol=1e-6)
    np.testing.assert_allclose(anchors["audio"].vectors[1], (e[1] - e[3]) / np.sqrt(2), atol=1e-6)


def test_anchor_is_the_mean_of_effect_minus_neutral_over_synonyms_and_contexts():
    rng = np.random.default_rng(0)
    table: dict[str, np.ndarray] = {}

    def embed(texts):
        for t in texts:
            table.setdefault(t, rng.standard_normal(5))
        return np.stack([table[t] for t in texts])

    s = phase1.AnchorSpec(
        "A {synonym} photo of {category}",
        "A photo of {category}",
        "category",
        {"blur": ["blurry", "soft"]},
        ["city", "hip hop"],
    )
    anchors, _ = phase1.text_anchors(embed, {"image": s})
    u = {t: unit(v) for t, v in table.items()}  # anchors use unit-normalised embeddings
    expected = np.mean(
        [
            u[f"A {syn} photo of {c}"] - u[f"A photo of {c}"]
            for syn in ("blurry", "soft")
            for c in ("city", "hip hop")
        ],
        axis=0,
    )
    np.testing.assert_allclose(anchors["image"].vectors[0], expected, atol=1e-12)
    assert phase1.readable("hip_hop") == "hip hop"


# --------------------------------------------------------------------------- scores


def test_constructed_case_scores_blur_lpf_highest():
    """blur's prototype equals its anchor, lpf's likewise, the bridge puts blur next to lpf."""
    rng = np.random.default_rng(1)
    img_anchor = rng.standard_normal((3, 8))  # blur, brightness, contrast (CLIP-like space)
    aud_anchor = rng.standard_normal((3, 6))  # lpf, highshelf, reverb (CLAP-like space)
    img_proto = img_anchor + 0.8 * rng.standard_normal((3, 8))
    aud_proto = aud_anchor + 0.8 * rng.standard_normal((3, 6))
    img_proto[0], aud_proto[0] = 2.5 * img_anchor[0], 0.3 * aud_anchor[0]  # scale is irrelevant
    # Bridge: both anchor sets again in one shared space, blur == lpf there.
    shared_img = rng.standard_normal((3, 4))
    shared_aud = rng.standard_normal((3, 4))
    shared_aud[0] = shared_img[0]
    sim1 = phase1.rowwise_cosine(img_proto, img_anchor)
    sim2 = phase1.rowwise_cosine(aud_proto, aud_anchor)
    sim3 = phase1.cosine_matrix(shared_img, shared_aud)
    score = phase1.combine(sim1, sim2, sim3, clip_negative=True)
    assert score.shape == (3, 3)
    assert sim1[0] == pytest.approx(1) and sim2[0] == pytest.approx(1)
    assert score[0, 0] == pytest.approx(1)
    assert np.unravel_index(np.argmax(score), score.shape) == (0, 0)
    best = phase1.best_matches(score, ["blur", "brightness", "contrast"], ["lpf", "hs", "rev"])
    assert best[0]["best"] == "lpf" and best[0]["score"] == pytest.approx(1)


def test_sim3_refuses_anchors_of_two_spaces():
    with pytest.raises(ValueError, match="768-d and 512-d.*undefined"):
        phase1.cosine_matrix(np.ones((2, 768)), np.ones((2, 512)))
    with pytest.raises(ValueError, match="768-d and 512-d.*undefined"):
        phase1.batched_cosine_matrix(np.ones((2, 768)), np.ones((2, 512)))
    assert "768" in phase1.SIM3_REASON and "512" in phase1.SIM3_REASON


def test_negative_factors_are_clipped_before_the_product():
    sim1 = np.array([-0.5, 0.5])
    sim2 = np.array([-0.5, 0.4])
    sim3 = np.array([[0.8, 0.5], [-0.5, 0.5]])
    raw = phase1.combine(sim1, sim2, sim3, clip_negative=False)
    clipped = phase1.combine(sim1, sim2, sim3, clip_negative=True)
    # two negatives make a positive AND without clipping: the very thing clipping prevents
    assert raw[0, 0] == pytest.approx(0.2)
    assert clipped[0, 0] == 0 and clipped[1, 0] == 0 and clipped[0, 1] == 0
    assert clipped[1, 1] == pytest.approx(0.5 * 0.4 * 0.5)
    assert raw[1, 1] == clipped[1, 1]


def test_combine_shapes_and_nan():
    sim1_k = np.array([[0.5, np.nan, 0.2], [0.1, 0.2, 0.3]])  # (intensities, image effects)
    sim2_k = np.array([[0.5, 0.5], [1.0, 1.0]])  # (intensities, audio effects)
    out = phase1.combine(sim1_k, sim2_k, np.ones((3, 2)))
    assert out.shape == (2, 3, 2)
    assert np.isnan(out[0, 1]).all() and out[1, 2, 1] == pytest.approx(0.3)


def test_best_matches_margin_and_ties():
    score = np.array([[0.2, 0.5, 0.1], [0.0, 0.0, 0.0], [np.nan, 0.3, np.nan]])
    best = phase1.best_matches(score, ["blur", "brightness", "contrast"], ["a", "b", "c"])
    assert best[0] == {
        "image_effect": "blur",
        "best": "b",
        "score": 0.5,
        "runner_up": "a",
        "runner_up_score": 0.2,
        "margin": pytest.approx(0.3),
        "tie": False,
    }
    assert best[1]["tie"] is True and best[1]["margin"] == 0
    assert best[2]["best"] == "b" and best[2]["runner_up"] is None and best[2]["margin"] is None


def _record_inputs():
    """A 2 x 2 discovery result with hand-set numbers and the run it came from."""
    nan = np.nan
    res = {
        "score": np.array([[0.4, 0.1], [nan, 0.2]]),
        "score_raw": np.array([[0.5, 0.1], [nan, 0.3]]),
        "sim1": np.array([0.8, nan]),
        "sim2": np.array([0.7, 0.6]),
        "sim3": np.array([[0.9, 0.2], [0.1, 0.5]]),
        "p": np.array([[0.01, 0.2], [nan, 0.05]]),
        "p_adjusted": np.array([[0.02, 0.4], [nan, 0.05]]),
        "chosen_pairs": [{"image_effect": "blur", "audio_effect": "lpf", "p_adjusted": 0.02}],
        "null_model": "foil concepts",
        "counts": {"image": np.array([[3, 4], [5, 6]]), "audio": np.array([[1, 2], [3, 4]])},
        "image_prototypes": np.array([[0.6, 0.8], [0.0, 0.5]]),
        "audio_prototypes": np.array([[1.0, 0.0], [0.0, 0.0]]),
        "k_sim1": np.array([9, 4]),
        "k_sim2": np.array([7, 7]),
        "k_sim3_audio": np.array([[3, 3], [3, 3]]),
    }
    run = phase1.RunRecord(
        effects={"image": ["blur", "brightness"], "audio": ["lpf", "gain"]},
        intensities=["low", "high"],
        templates={m: {"effect": "{synonym}", "neutral": "x"} for m in ("image", "audio")},
        synonyms={
            "image": {"blur": ("soft", "hazy"), "brightness": ("bright",)},
            "audio": {"lpf": ("muffled",), "gain": ("loud", "louder")},
        },
        contexts={"image": ["city"], "audio": ["jazz"]},
        n_prompts={"image": 10, "audio": 8},
        n_pairs={"image": [2, 1], "audio": [1, 2]},
        text_models={"image": {"name_or_path": "clip"}, "audio": {"name_or_path": "clap"}},
        health_docs=[
            health_report(
                modality="audio",
                model={},
                text_mean_pairwise_cosine=None,
                audio_mean_pairwise_cosine=None,
            )
        ],
        meta={"note": "n", "not_science": True},
        components_file="out/c.npz",
        n_audio_used=3,
        n_audio_held_out=1,
    )
    return res, run


def test_discovery_labels_record_known_values():
    res, run = _record_inputs()
    opts = phase1.Options.from_config(DEFAULTS["phase1"])
    foils = {"a": ["w1", "w2"], "b": ["w3"]}
    labels = phase1.discovery_labels(res, run, opts, {}, {"n_seeds": 2}, foils)
    out = labels.to_json()
    assert labels.pairs() == {("blur", "lpf")} and labels.p_adjusted == [[0.02, 0.4], [None, 0.05]]
    assert labels.sim1 == {"blur": 0.8, "brightness": None}  # NaN (undefined) is null
    assert out["prototypes"]["image"]["n_deltas"]["brightness"] == {"low": 4, "high": 6}
    assert out["prototypes"]["image"]["pooled_norm"] == {"blur": 1.0, "brightness": 0.5}
    assert out["prompts"]["pairs_per_effect"]["audio"] == {"lpf": 1, "gain": 2}
    assert out["synonyms"]["image"]["blur"] == ["soft", "hazy"]  # lists, as JSON holds them
    assert out["foils"]["k_min"] == 3 and out["foils"]["smallest_p"] == 0.25
    assert out["foils"]["n_words"] == 3 and out["foils"]["n_clusters"] == 2
    assert out["audio_files"] | {"chosen_on": ""} == {"chosen_on": "", "n_used": 3, "n_held_out": 1}
    assert out["health"] == {
        "audio": {
            "text_mean_pairwise_cosine": None,
            "audio_mean_pairwise_cosine": None,
            "limit": 0.95,
            "passed": True,
            "model": None,
        }
    }
    assert out["meta"]["text_models"]["audio"] == {"name_or_path": "clap"}
    assert "text_models" not in run.meta  # the run's own meta is not changed
    assert out["stability"] == {"n_seeds": 2} and out["components_file"] == "out/c.npz"
    assert DiscoveryLabels.from_json(out) == labels  # what is written reads back the same


def test_cell_rows_mark_significance_at_alpha_inclusive_and_the_chosen_pair():
    res, run = _record_inputs()
    rows = phase1.cell_rows(res, run.effects["image"], run.effects["audio"], alpha=0.05)
    by_cell = {(r["image_effect"], r["audio_effect"]): r for r in rows}
    assert list(by_cell) == [
        ("blur", "lpf"),
        ("blur", "gain"),
        ("brightness", "lpf"),
        ("brightness", "gain"),
    ]
    assert by_cell["blur", "lpf"]["significant"] and by_cell["blur", "lpf"]["chosen"]
    assert by_cell["brightness", "gain"]["significant"]  # p_adjusted == alpha counts
    assert not by_cell["brightness", "gain"]["chosen"]  # significant but not chosen
    assert not by_cell["brightness", "lpf"]["significant"]  # NaN p is never significant
    assert by_cell["blur", "gain"]["sim2"] == 0.6 and by_cell["brightness", "lpf"]["sim3"] == 0.1
    assert "k_sim3_audio" in by_cell["blur", "lpf"] and "p_sim3_image" not in by_cell["blur", "lpf"]


# --------------------------------------------------------------------------- the job


def _store(modality, effects, intensities, directions, contexts, dim, seed) -> DeltaStore:
    """Deltas of each effect = its direction + small noise, for every file and intensity."""
    rng = np.random.default_rng(seed)
    files = [f"{c}/{i}.x" for c in contexts for i in range(2)]
    rows = [(f, e, k) for f in range(len(files)) for e in range(len(effects)) for k in range(2)]
    f_idx, e_code, k_code = (np.array(col) for col in zip(*rows, strict=True))
    delta = np.stack([directions[e] for e in e_code]) * (1.0 + k_code[:, None])
    delta = delta + 0.05 * rng.standard_normal(delta.shape)
    model = {"name_or_path": f"fake-{modality}", "dtype": "fp32", "tiny": True, "dim": dim}
    return DeltaStore(
        modality=modality,
        delta=delta.astype(np.float32),
        file_index=f_idx,
        effect_code=e_code,
        intensity_code=k_code,
        files=np.array(files),
        file_category=np.array([f.split("/")[0] for f in files]),
        original=np.zeros((len(files), dim), dtype=np.float32),
        effects=np.array(effects),
        intensities=np.array(intensities),
        meta={"model": model, "not_science": True},
    )


class _Info:
    def __init__(self, name):
        self.name = name

    def to_dict(self):
        return {"name_or_path": self.name, "tiny": True, "dim": 0}


def _run_phase1(kw) -> None:
    """run_phase1 from the fixture's flat arguments (paths, then the settings it builds)."""
    from delta_v2a.jobs.common import Paths
    from delta_v2a.settings import ModelSpec, Phase1Settings

    options = dict(DEFAULTS["phase1"]) | {"shared_words": "warn"} | dict(kw["options"])
    settings = Phase1Settings(
        models={
            m: ModelSpec(m, v["name_or_path"], None, "cpu", "fp32", True, 1)
            for m, v in kw["models"].items()
        },
        templates=kw["templates"],
        synonyms={m: {e: tuple(w) for e, w in v.items()} for m, v in kw["synonyms"].items()},
        options=phase1.Options.from_config(options),
        allow_unhealthy=kw["allow_unhealthy"],
        text_batch_size=64,
        stability_seeds=2,
    )
    inputs = Paths(
        image=kw["image_store"], audio=kw["audio_store"], split=kw["split"], health=kw["health"]
    )
    outputs = Paths(
        matrix=kw["matrix_out"],
        labels=kw["labels_out"],
        components=kw["components_out"],
        table=kw["table_out"],
        **kw["figures"],
    )
    job.run_phase1(inputs=inputs, outputs=outputs, settings=settings, threads=1)


@pytest.fixture
def job_inputs(tmp_path, monkeypatch):
    """Synthetic stores (image: brightness, blur; audio: lpf, highshelf; config order kept)
    and stand-in text towers; returns the run_phase1 keyword arguments."""
    e16, e12 = np.eye(16), np.eye(12)
    img_dirs = [e16[1] - e16[3], e16[0] - e16[3]]
    aud_dirs = [e12[0] - e12[3], e12[1] - e12[3]]
    img = _store("image", ["brightness", "blur"], ["low", "high"], img_dirs, ["city", "sea"], 16, 0)
    aud = _store("audio", ["lpf", "highshelf"], ["low", "high"], aud_dirs, ["jazz", "folk"], 12, 1)
    img.save(tmp_path / "image.npz")
    aud.save(tmp_path / "audio.npz")
    towers = {
        "image": FakeTextTower(16, GROUPS, CONTEXTS),
        "audio": FakeTextTower(12, GROUPS, CONTEXTS),
    }
    loads = []

    def fake_loader(model, threads):
        modality = model.modality
        loads.append(modality)
        tower = towers[modality]
        tower.info = _Info(model.name_or_path)
        return tower

    monkeypatch.setattr(job, "load_embedder_for_job", fake_loader)
    health = []
    for modality in ("image", "audio"):
        path = tmp_path / f"health_{modality}.json"
        health_report(
            modality=modality,
            model={"name_or_path": f"fake-{modality}"},
            text_mean_pairwise_cosine=0.5,
            audio_mean_pairwise_cosine=0.4 if modality == "audio" else None,
        ).write(path)
        health.append(str(path))
    from delta_v2a.split import Split, write_split

    files = [str(f) for f in aud.files]  # Phase 1 chooses on train + val: one file held out
    write_split(
        tmp_path / "split.json", Split(tuple(files), ("train", "train", "val", "test"), {}, 0)
    )
    kwargs = dict(
        image_store=str(tmp_path / "image.npz"),
        audio_store=str(tmp_path / "audio.npz"),
        split=str(tmp_path / "split.json"),
        health=health,
        models={m: {"name_or_path": f"fake-{m}"} for m in ("image", "audio")},
        allow_unhealthy=False,
        options={"text_bridge": "both", "n_permutations": 199, "n_bootstrap": 100},
        templates=TEMPLATES,
        synonyms=SYN,
        matrix_out=str(tmp_path / "out/discovery_matrix.npy"),
        labels_out=str(tmp_path / "out/discovery_labels.json"),
        components_out=str(tmp_path / "out/discovery_components.npz"),
        table_out=str(tmp_path / "out/discovery.tsv"),
        figures={
            k: str(tmp_path / f"out/discovery_{k}.png") for k in ("heatmap", "panels", "intensity")
        },
    )
    return kwargs, towers, loads


def test_job_writes_matrix_labels_components_and_heatmap(job_inputs):
    kwargs, towers, loads = job_inputs
    _run_phase1(kwargs)
    assert loads == ["image", "audio"]  # one load of each model per job
    assert all(len(t.calls) == 1 for t in towers.values())  # one batched call per text space
    matrix = np.load(kwargs["matrix_out"])
    labels = json.loads(Path(kwargs["labels_out"]).read_text())
    assert matrix.shape == (2, 2) and matrix.dtype.kind == "f"
    assert labels["image_effects"] == ["brightness", "blur"]  # store (config) order
    assert labels["audio_effects"] == ["lpf", "highshelf"]
    # blur <-> lpf and brightness <-> highshelf: the diagonal of the constructed geometry
    assert matrix[1, 0] == matrix[1].max() and matrix[0, 1] == matrix[0].max()
    comp = np.load(kwargs["components_out"], allow_pickle=False)
    # centred anchors of two effects are +-(e_a - e_b)/2: the bridges give exactly +-1
    np.testing.assert_allclose(comp["sim3_audio"], [[-1, 1], [1, -1]], atol=1e-6)
    np.testing.assert_allclose(comp["sim3_image"], [[-1, 1], [1, -1]], atol=1e-6)
    assert [b["best"] for b in labels["best_matches"]] == ["highshelf", "lpf"]
    assert labels["text_bridge"] == "both" and labels["clip_negative"] is True
    assert labels["center_anchors"] is True and "smaller of" in labels["sim3_definition"]
    assert labels["null_model"].startswith("foil") and labels["foils"]["n_clusters"] >= 25
    assert labels["audio_files"] == {**labels["audio_files"], "n_used": 3, "n_held_out": 1}
    assert labels["stability"]["n_seeds"] == 2 and labels["stability"]["seeds"] == [0, 1]
    for pair in labels["chosen_pairs"]:
        assert pair["rank_in_row"] >= 1 and pair["reason"]
    assert "768" in labels["sim3_reason"] and labels["intensities"] == ["low", "high"]
    assert labels["synonyms"] == SYN and labels["templates"] == TEMPLATES
    assert labels["contexts"]["image_categories"] == ["city", "sea"]
    assert labels["contexts"]["audio_genres"] == ["folk", "jazz"]
    assert labels["health"]["audio"]["text_mean_pairwise_cosine"] == 0.5
    assert labels["meta"]["not_science"] and "NOT SCIENCE" in labels["meta"]["note"]
    # the Phase 3 contract: p_adjusted has the matrix's shape; alpha, correction, chosen_pairs
    assert np.shape(labels["p_adjusted"]) == matrix.shape
    assert labels["alpha"] == 0.05 and labels["correction"] == "holm"
    assert isinstance(labels["chosen_pairs"], list)
    np.testing.assert_array_equal(comp["score"], matrix)
    assert comp["score_per_intensity"].shape == (2, 2, 2)
    assert comp["sim1"].shape == (2,) and comp["sim2"].shape == (2,)
    assert comp["sim3"].shape == comp["score_raw"].shape == comp["p_adjusted"].shape == (2, 2)
    assert comp["image_anchor"].shape == (2, 16)
    assert comp["image_anchor_audio_tower"].shape == (2, 12)
    assert list(comp["image_effects"]) == labels["image_effects"]
    np.testing.assert_allclose(
        comp["score"], phase1.combine(comp["sim1"], comp["sim2"], comp["sim3"], True)
    )
    table = pd.read_csv(kwargs["table_out"], sep="\t")
    assert len(table) == 4 and {"score_lo", "score_hi", "p_sim3", "p_adjusted"} <= set(table)
    for k in ("heatmap", "panels", "intensity"):
        png = Path(kwargs["figures"][k]).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_job_single_bridge_embeds_only_what_it_needs(job_inputs):
    kwargs, towers, _ = job_inputs
    _run_phase1(kwargs | {"options": kwargs["options"] | {"text_bridge": "audio"}})
    clip_prompts = towers["image"].calls[0]
    assert not any(p.endswith(" song") for p in clip_prompts)  # no audio anchors in CLIP space
    comp = np.load(kwargs["components_out"])
    assert "sim3_image" not in comp.files and "audio_anchor_image_tower" not in comp.files
    np.testing.assert_array_equal(comp["sim3"], comp["sim3_audio"])


def test_job_stops_on_a_collapsed_text_tower_before_loading_a_model(job_inputs):
    kwargs, _, loads = job_inputs
    doc = json.loads(Path(kwargs["health"][1]).read_text())
    write_json(kwargs["health"][1], doc | {"text_mean_pairwise_cosine": 0.999, "passed": False})
    with pytest.raises(PipelineError, match="fake-audio.*0.9990.*allow_unhealthy"):
        _run_phase1(kwargs)
    assert loads == [] and not Path(kwargs["matrix_out"]).exists()
    _run_phase1(kwargs | {"allow_unhealthy": True})
    labels = json.loads(Path(kwargs["labels_out"]).read_text())
    assert labels["health"]["audio"]["text_mean_pairwise_cosine"] == 0.999


# --------------------------------------------------------------------------- config


def test_default_synonyms_cover_every_effect_with_at_least_five():
    syn = DEFAULTS["phase1"]["synonyms"]
    for modality in ("image", "audio"):
        assert set(syn[modality]) == set(DEFAULTS["effects"][modality])
        assert all(len(set(v)) >= 5 for v in syn[modality].values())
    check_config(DEFAULTS)


def test_config_check_names_the_missing_synonym_key():
    cfg = copy.deepcopy(DEFAULTS)
    del cfg["phase1"]["synonyms"]["audio"]["reverb"]
    with pytest.raises(ConfigError, match=r"phase1\.synonyms\.audio\.reverb"):
        check_config(cfg)


@pytest.mark.parametrize(
    ("kind", "template", "needle"),
    [
        ("effect", "A photo of {category}", "must contain {synonym}"),
        ("effect", "A {synonym} photo of {genre}", "'genre'"),
        ("neutral", "A {synonym} photo", "may contain only {category}"),
    ],
)
def test_config_check_rejects_bad_templates(kind, template, needle):
    cfg = copy.deepcopy(DEFAULTS)
    cfg["phase1"]["templates"]["image"][kind] = template
    with pytest.raises(ConfigError, match=rf"phase1\.templates\.image\.{kind}") as err:
        check_config(cfg)
    assert needle in str(err.value)


def test_schema_fills_phase1_defaults():
    from snakemake.utils import validate

    from delta_v2a.config import with_defaults

    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    cfg = with_defaults({"data": {"images": "i", "audio": "a"}}, schema)
    validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"), set_default=False)
    assert cfg["phase1"]["text_bridge"] == "both" and cfg["phase1"]["clip_negative"] is True
    assert cfg["phase1"]["templates"] == TEMPLATES
    assert cfg["phase1"]["synonyms"] == DEFAULTS["phase1"]["synonyms"]


# --------------------------------------------------------------------------- snakemake


# --------------------------------------------------------------------------- summary


def test_summary_reports_significant_pairs_and_is_loud_without_one():
    from delta_v2a.report.summary import _phase1_verdict

    fields = {
        "image_effects": ["blur", "contrast"],
        "audio_effects": ["lpf", "reverb"],
        "alpha": 0.05,
        "correction": "holm",
        "p": [[0.001, 0.1], [None, 0.05]],
        "p_adjusted": [[0.01, 0.5], [None, 0.2]],
        "chosen_pairs": [
            {"image_effect": "blur", "audio_effect": "lpf", "score": 0.3, "p_adjusted": 0.01}
        ],
        "sim1": {},
        "sim2": {},
        "sim3": [[0.5, 0.1], [None, 0.2]],
        "best_matches": [],
    }
    labels = DiscoveryLabels.build(fields)
    matrix = np.array([[0.3, 0.1], [np.nan, 0.2]])
    ok = _phase1_verdict(matrix, labels)
    assert ok["status"] == "ok" and "blur -> lpf (score 0.3, p_adjusted 0.01)" in ok["lines"]
    assert any(line.startswith("contrast: no pair") and "0.2" in line for line in ok["lines"])
    none = _phase1_verdict(matrix, DiscoveryLabels.build(fields | {"chosen_pairs": []}))
    assert none["status"] == "FAILED" and "NO significant pair" in none["lines"][-1]
