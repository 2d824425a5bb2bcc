"""The jobs after extraction at scale: the streamed store and seed JSON, Phase 0 one effect at a
time, and every job's declared memory against its measured peak (docs/methods.md §2.3-2.4)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from delta_v2a import phase0, resources
from delta_v2a.extract import gather, read_manifest, write_manifest
from delta_v2a.jobs.common import Paths, PipelineError
from delta_v2a.jobs.deltas import run_deltas
from delta_v2a.jobs.manifest import run_manifest_current
from delta_v2a.jobs.phase0 import store_parts
from delta_v2a.media import MediaFile
from delta_v2a.settings import DeltasSettings
from delta_v2a.storage import (
    DeltaStore,
    DeltaStoreWriter,
    EmbeddingTable,
    StoreError,
    open_store,
    write_deltas_json,
)

ROOT = Path(__file__).resolve().parents[2]
EFFECTS, LEVELS = ("blur", "noise", "tint"), ("low", "high")


def tables(rng, n=11, dim=8, cats=("a", "b", "c")):
    """Originals and one table per variant; variant v moves every file along its own axis."""
    paths = np.array([f"{cats[i % 3]}/f{i}.png" for i in range(n)])
    categories = np.array([p.split("/")[0] for p in paths])
    orig = rng.standard_normal((n, dim)).astype(np.float32)
    meta = {"model": {"name_or_path": "m"}, "decoding": {}, "effect_params": {}, "n_cached": 0}
    original = EmbeddingTable(paths, categories, orig, meta | {"effect": None, "intensity": None})
    variants = []
    for v, (e, i) in enumerate((e, i) for e in EFFECTS for i in LEVELS):
        emb = orig + np.eye(dim, dtype=np.float32)[v % dim] * (1 + v)
        emb += 0.1 * rng.standard_normal((n, dim)).astype(np.float32)
        variants.append(
            EmbeddingTable(paths, categories, emb, meta | {"effect": e, "intensity": i})
        )
    return original, variants


def reference(original, variants) -> tuple[DeltaStore, np.ndarray]:
    """The all-in-memory gather the streamed job must equal bit for bit."""
    labelled = [(t.meta["effect"], t.meta["intensity"], t) for t in variants]
    return gather("image", original, labelled, EFFECTS, LEVELS, {})


def test_store_written_in_parts_reads_back_whole_and_by_rows(tmp_path):
    original, variants = tables(np.random.default_rng(0))
    ref, _ = reference(original, variants)
    n = len(original.paths)
    path = tmp_path / "s.npz"
    with DeltaStoreWriter(
        path,
        "image",
        files=ref.files,
        file_category=ref.file_category,
        original=ref.original,
        effects=EFFECTS,
        intensities=LEVELS,
        n_rows=len(ref),
    ) as out:
        for v in range(len(variants)):
            for lo, hi in ((0, 4), (4, n)):  # two parts per variant, as file shards come
                rows = slice(v * n + lo, v * n + hi)
                out.add(ref.delta[rows], range(lo, hi), v // 2, v % 2)
        out.meta = {"degenerate": []}
    back = DeltaStore.load(path)
    for key in ("delta", "file_index", "effect_code", "intensity_code", "original", "files"):
        np.testing.assert_array_equal(getattr(back, key), getattr(ref, key))
    reader = open_store(path)
    index = np.array([0, 3, 5, 21, 22, 40, len(ref) - 1])
    np.testing.assert_array_equal(reader.rows(index, block=4), ref.delta[index])
    sub = reader.store(index)
    np.testing.assert_array_equal(sub.effect_code, ref.effect_code[index])
    assert [(e, i, rows.tolist()) for e, i, rows in reader.variant_rows()][1] == (
        0,
        1,
        list(range(n, 2 * n)),
    )


def test_a_store_of_another_version_or_compressed_is_refused_in_one_line(tmp_path):
    original, variants = tables(np.random.default_rng(1))
    ref, _ = reference(original, variants)
    ref.save(tmp_path / "ok.npz")
    with np.load(tmp_path / "ok.npz") as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    np.savez(
        tmp_path / "v1.npz", **arrays | {"meta": np.array(json.dumps(meta | {"store_version": 1}))}
    )
    with pytest.raises(
        StoreError,
        match=r"v1.npz: delta store version 1, this version of delta-v2a reads version 2",
    ):
        DeltaStore.load(tmp_path / "v1.npz")
    np.savez_compressed(tmp_path / "z.npz", **arrays)
    with pytest.raises(StoreError, match="z.npz: member .* is compressed"):
        open_store(tmp_path / "z.npz")


def test_phase0_one_effect_at_a_time_gives_the_whole_store_tables(tmp_path):
    original, variants = tables(np.random.default_rng(2), n=30)
    ref, _ = reference(original, variants)
    ref.save(tmp_path / "s.npz")
    reader = open_store(tmp_path / "s.npz")
    by_effect, by_variant = (list(store_parts([reader], by)) for by in ("effect", "variant"))
    assert [len(s) for s in by_effect] == [60, 60, 60]  # one effect (two intensities) each
    assert [len(s) for s in by_variant] == [30] * 6
    assert all(len(s.effects) == 1 and s.original.size == 0 for s in by_effect + by_variant)
    pieces = {
        "sensitivity": lambda ss: phase0.sensitivity_table(ss, 0.5),
        "within": lambda ss: phase0.within_category_table(ss, 0.3, 1.0),
        "cross": lambda ss: phase0.cross_category_table(ss, 0.1),
        "across": phase0.across_intensity_table,
    }
    for name, table in pieces.items():
        whole = table([ref])
        subs = by_effect if name == "across" else by_variant
        streamed = [row for s in subs for row in table([s])]
        assert json.dumps(streamed) == json.dumps(whole), name


@pytest.mark.parametrize("seed_json", ["full", "gzip", "none"])
def test_streamed_deltas_job_equals_the_in_memory_gather(tmp_path, seed_json):
    original, variants = tables(np.random.default_rng(3))
    variants[3].embeddings[2] = original.embeddings[2]  # a zero-norm delta, named in meta
    ref, augmented = reference(original, variants)
    original.save(tmp_path / "original.npz")
    parts = []
    for t in variants:  # every variant in two shards, as extract.shard_files writes them
        for k, rows in enumerate((slice(0, 6), slice(6, None))):
            part = EmbeddingTable(t.paths[rows], t.categories[rows], t.embeddings[rows], t.meta)
            parts.append(str(tmp_path / f"{t.meta['effect']}_{t.meta['intensity']}.{k}.npz"))
            part.save(parts[-1])
    suffix = {"full": ".json", "gzip": ".json.gz", "none": None}[seed_json]
    outputs = {"store": str(tmp_path / "d.npz"), "meta": str(tmp_path / "d.meta.json")}
    if suffix:
        outputs["json"] = str(tmp_path / f"d{suffix}")
    settings = DeltasSettings("image", EFFECTS, LEVELS, 2, seed_json)
    inputs = Paths(original=str(tmp_path / "original.npz"), variants=parts)
    run_deltas(inputs=inputs, outputs=Paths(**outputs), settings=settings)
    store = DeltaStore.load(tmp_path / "d.npz")
    assert store.delta.tobytes() == ref.delta.tobytes()
    for key in ("file_index", "effect_code", "intensity_code", "original", "files"):
        np.testing.assert_array_equal(getattr(store, key), getattr(ref, key))
    meta = json.loads((tmp_path / "d.meta.json").read_text())
    assert meta["degenerate"] == store.meta["degenerate"]
    assert [(d["path"], d["effect_type"], d["intensity"]) for d in meta["degenerate"]] == [
        ("c/f2.png", "noise", "high")
    ]
    assert (meta["n_records"], meta["seed_json"]) == (len(ref), seed_json)
    if seed_json == "none":
        assert sorted(p.name for p in tmp_path.glob("d.*")) == ["d.meta.json", "d.npz"]
        return
    raw = Path(outputs["json"]).read_bytes()
    text = gzip.decompress(raw) if seed_json == "gzip" else raw
    import io

    want = io.BytesIO()
    write_deltas_json(want, ref, augmented)
    assert json.loads(text) == json.loads(want.getvalue())


def test_a_shard_of_other_files_stops_the_deltas_job_in_one_line(tmp_path):
    original, variants = tables(np.random.default_rng(4))
    original.save(tmp_path / "original.npz")
    paths = []
    for v, t in enumerate(variants):
        if v == 1:
            t = EmbeddingTable(t.paths[::-1], t.categories[::-1], t.embeddings, t.meta)
        paths.append(str(tmp_path / f"v{v}.npz"))
        t.save(paths[-1])
    with pytest.raises(PipelineError, match="blur/high: its files differ from the originals'"):
        run_deltas(
            inputs=Paths(original=str(tmp_path / "original.npz"), variants=paths),
            outputs=Paths(store=str(tmp_path / "d.npz"), meta=str(tmp_path / "m.json")),
            settings=DeltasSettings("image", EFFECTS, LEVELS, 0, "none"),
        )
    assert not (tmp_path / "d.npz").exists()  # nothing half-written is left


def test_cost_model_follows_the_inputs():
    """Known answers of the stated model: deltas hold the originals and one part, Phase 0 one
    effect and the originals of the largest store, Phase 1 both stores."""
    d = resources.COSTS["deltas"]
    assert resources.mem_mb("deltas", [100, 30, 40, 35]) == 100 * int(
        np.ceil((d.base_mb + d.per_mb * 140) / 100)
    )
    share = resources.resident_mb("sensitivity", [1300, 900, 0.01], variants=12, effects=4)
    assert share == pytest.approx(1300 * 4 / 13)
    assert resources.resident_mb("phase1", [1300, 900, 1, 0.01], 12, 4) == pytest.approx(2201.01)
    small, large = (resources.mem_mb("linearity", [s, s / 2], 12, 4) for s in (10, 10_000))
    assert small < large
    assert resources.wall_on_nodes([(128, 2.0), (2, 5.0)], nodes=8, slots_per_node=4) == 4 * 2 + 5
    with pytest.raises(KeyError, match="no cost model"):
        resources.mem_mb("nonesuch", [1])


def _benchmark():
    spec = importlib.util.spec_from_file_location("scale_bench", ROOT / "benchmarks/scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _peak(bench, folder: Path, rule: str, modality: str) -> float:
    cmd = [sys.executable, str(ROOT / "benchmarks/scale.py"), "--child", rule, "--dir"]
    cmd += [str(folder), "--modality", modality, "--seed-json", "full"]
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"]


def test_every_job_stays_inside_its_declared_memory_at_two_sizes(tmp_path):
    """Each job function in its own process (peak RSS) against what its rule declares for
    those inputs, at two sizes; and the deltas job's peak grows by about one variant's table,
    not by every variant (the in-memory gather grew by all twelve)."""
    bench, cfg = _benchmark(), None
    cfg = bench.config()
    peaks = {}
    for n in (800, 3200):  # two sizes a few minutes apart on a busy 2-core machine
        folder = tmp_path / str(n)
        folder.mkdir()
        bench.make_inputs(folder, n, cfg)
        jobs = [("deltas", "image"), ("deltas", "audio"), ("sensitivity", "image")]
        jobs += [("linearity", "image"), ("split", "image"), ("phase1", "image")]
        for rule, modality in jobs:
            peak = _peak(bench, folder, rule, modality)
            declared = bench.declared_mb(folder, rule, cfg, modality)
            assert peak <= declared, (rule, modality, n, peak, declared)
            peaks[rule, modality, n] = peak
    one_variant = 2400 * 768 * 4 / 2**20  # the image originals or one variant grow by this
    growth = peaks["deltas", "image", 3200] - peaks["deltas", "image", 800]
    assert growth < 6 * one_variant, growth  # holding all 12 variants grew by > 12


def test_vetting_shards_join_into_the_one_manifest_in_order(tmp_path):
    """manifest_current joins the shards' manifests and skipped lists (headers once, order
    kept) and removes the vetted files of other data states."""
    vetted = tmp_path / "vetted"
    vetted.mkdir()
    files = [MediaFile(f"/d/c{i % 2}/f{i}.png", f"c{i % 2}", "image") for i in range(5)]
    manifests, skipped = [], []
    for k, rows in enumerate(([0, 1], [2, 3], [4])):
        manifests.append(str(vetted / f"image.{'a' * 16}.part{k}.tsv"))
        write_manifest(manifests[-1], [files[i] for i in rows], [f"h{i}" for i in rows])
        skipped.append(str(vetted / f"image_skipped.{'a' * 16}.part{k}.tsv"))
        Path(skipped[-1]).write_text(f"path\treason\n/d/c0/bad{k}.png\tempty\n")
    (vetted / f"image.{'b' * 16}.tsv").write_text("an earlier state")
    out = Paths(manifest=str(tmp_path / "image.tsv"), skipped=str(tmp_path / "image_skipped.tsv"))
    run_manifest_current(inputs=Paths(manifest=manifests, skipped=skipped), outputs=out)
    joined = read_manifest(out.manifest)
    assert [f.path for f in joined] == [f.path for f in files]
    assert [f.sha256 for f in joined] == [f"h{i}" for i in range(5)]
    lines = Path(out.skipped).read_text().splitlines()
    assert lines == ["path\treason"] + [f"/d/c0/bad{k}.png\tempty" for k in range(3)]
    assert not (vetted / f"image.{'b' * 16}.tsv").exists() and Path(manifests[2]).exists()
    empty = str(vetted / "image.cccccccccccccccc.part0.tsv")
    write_manifest(empty, [], [])
    with pytest.raises(PipelineError, match="no usable files in any of the 2 vetting shards"):
        run_manifest_current(
            inputs=Paths(manifest=[empty, empty], skipped=skipped[:2]), outputs=out
        )
