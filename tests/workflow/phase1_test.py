"""Phase 1 through real Snakemake: artifacts, and a synonym change reruns only Phase 1."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import yaml
from workflow_utils import ROOT, make_project, planned_jobs, snakemake

from delta_v2a.config import load_config

DEFAULTS = load_config(ROOT / "workflow/schemas/config.schema.yaml", ROOT / "config/config.yaml")


PHASE1_TARGETS = [
    "results/discovery_matrix.npy",
    "results/discovery_labels.json",
    "results/discovery.tsv",
    "results/discovery_heatmap.png",
]


def _small_config() -> dict:
    """The full defaults cut to 2 image × 2 audio effects × 2 intensities (used with
    --replace-workflow-config: a plain overlay cannot remove effects, nested keys merge)."""
    cfg = copy.deepcopy(DEFAULTS)
    del cfg["data"]  # make_project's data folders and tiny models stay
    for key in ("image", "audio", "device"):
        del cfg["models"][key]
    cfg["intensities"] = ["low", "high"]
    for modality, keep in (("image", ["blur", "brightness"]), ("audio", ["lpf", "reverb"])):
        effects = {e: cfg["effects"][modality][e] for e in keep}
        for spec in effects.values():
            spec["levels"] = {k: spec["levels"][k] for k in ("low", "high")}
        cfg["effects"][modality] = effects
        cfg["run_effects"][modality] = list(keep)
    cfg["phase1"] |= {"n_permutations": 200, "n_bootstrap": 100}
    return cfg


@pytest.mark.workflow
def test_snakemake_phase1_artifacts_and_synonym_rerun(tmp_path, tiny_clip_dir, tiny_clap_dir):
    base = tmp_path
    cfg_path = make_project(
        base,
        {"image": tiny_clip_dir, "audio": tiny_clap_dir},
        {"city": 2, "sea_view": 1},
        {"jazz": 2, "folk": 1},
        extra=_small_config(),
    )
    args = ("--replace-workflow-config", *PHASE1_TARGETS)
    snakemake(base, *args, config=cfg_path)

    matrix = np.load(base / "results/discovery_matrix.npy")
    labels = json.loads((base / "results/discovery_labels.json").read_text())
    assert matrix.shape == (2, 2) and np.isfinite(matrix).all() and (matrix >= 0).all()
    assert labels["image_effects"] == ["blur", "brightness"]
    assert labels["audio_effects"] == ["lpf", "reverb"]
    assert labels["intensities"] == ["low", "high"]
    assert labels["contexts"]["image_categories"] == ["city", "sea_view"]
    assert labels["meta"]["not_science"] is True
    assert set(labels["health"]) == {"image", "audio"}
    assert len(labels["best_matches"]) == 2
    # Phase 3's contract: p_adjusted of the matrix's shape, alpha, correction, chosen pairs
    assert np.shape(labels["p_adjusted"]) == (2, 2) and labels["correction"] == "holm"
    assert labels["alpha"] == 0.05 and isinstance(labels["chosen_pairs"], list)
    assert labels["center_anchors"] is True
    table = (base / "results/discovery.tsv").read_text().splitlines()
    assert len(table) == 1 + 4 and "p_adjusted" in table[0] and "score_lo" in table[0]
    comp = np.load(base / "results/discovery_components.npz")
    assert {"score_raw", "sim1_raw", "sim3_raw", "p_sim3"} <= set(comp.files)
    for name in ("discovery_components.png", "discovery_per_intensity.png"):
        assert (base / "results" / name).read_bytes()[:4] == b"\x89PNG"
    png = (base / "results/discovery_heatmap.png").read_bytes()
    assert png[:4] == b"\x89PNG" and len(png) > 5000
    log = (base / "logs/phase1.log").read_text()
    assert "Phase 1 (bridge both, centred anchors" in log and "blur" in log
    assert (base / "results/benchmarks/phase1.tsv").is_file()

    assert planned_jobs(snakemake(base, "--dry-run", *args, config=cfg_path)) == {}
    changed = yaml.safe_load(cfg_path.read_text())
    changed["phase1"]["synonyms"]["audio"]["reverb"] = ["echoey", "cavernous"]
    changed_path = base / "changed.yaml"
    changed_path.write_text(yaml.safe_dump(changed))
    jobs = planned_jobs(snakemake(base, "--dry-run", *args, config=changed_path))
    assert jobs == {"phase1": 1}
