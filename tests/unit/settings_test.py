"""One owner per decision: settings built once, defaults in the schema only, jobs that take
``(inputs, outputs, settings, threads)``, and every reader of the chosen pairs agreeing."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from delta_v2a import settings as S
from delta_v2a.config import NO_DEFAULT, load_config, merge, schema_defaults

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "workflow/schemas/config.schema.yaml"
SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())
CONFIG = load_config(SCHEMA_PATH, ROOT / "config/config.yaml", ROOT / "config/demo.yaml")


def _leaves(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _schema_default(path: str):
    node: object = schema_defaults(SCHEMA)
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return NO_DEFAULT
        node = node[part]
    return node


def test_no_default_is_written_twice():
    """config/config.yaml is an overlay: none of its active keys repeats a schema default."""
    overlay = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    twice = [k for k, _ in _leaves(overlay) if _schema_default(k) is not NO_DEFAULT]
    assert twice == [], f"defaults written in config/config.yaml and the schema: {twice}"


def test_schema_defaults_merge_like_snakemake_configs():
    assert merge({"a": {"b": 1, "c": [1, 2]}}, {"a": {"c": [3]}}) == {"a": {"b": 1, "c": [3]}}
    schema = {
        "properties": {
            "x": {"default": None},
            "y": {"type": "object", "default": {}, "properties": {"z": {"default": 2}}},
            "w": {"type": "string"},
        }
    }
    assert schema_defaults(schema) == {"x": None, "y": {"z": 2}}  # w has none: absent


@pytest.mark.parametrize(
    "build",
    [
        lambda c: S.manifest_settings(c, "audio", "v"),
        lambda c: S.embed_settings(c, "audio", "lpf", "high"),
        lambda c: S.embed_settings(c, "image", None, None),
        lambda c: S.embed_group_settings(c, "image", [(None, None), ("blur", "low")]),
        lambda c: S.embed_settings(
            merge(c, {"extract": {"shard_files": 4}}), "audio", None, None, 3
        ),
        S.extract_settings,
        lambda c: S.deltas_settings(c, "image"),
        lambda c: S.health_settings(c, "audio"),
        S.sensitivity_settings,
        S.linearity_settings,
        S.phase1_settings,
        S.windows_settings,
        S.dataset_settings,
        S.strength_settings,
        lambda c: S.phase3_settings(c, "results/phase3/checkpoints"),
        S.examples_settings,
    ],
)
def test_settings_survive_snakemake_params(build):
    """A rule hands the job builtin data (Snakemake reruns on its repr); the job rebuilds the
    same frozen object, and a field missing on either side fails at once."""
    settings = build(CONFIG)
    params = S.to_params(settings)
    assert repr(params) == repr(eval(repr(params)))  # builtin types only  # noqa: S307
    assert S.from_params(type(settings), params) == settings
    name = dataclasses.fields(settings)[0].name
    with pytest.raises(TypeError, match=f"missing \\['{name}'\\]"):
        S.from_params(type(settings), {k: v for k, v in params.items() if k != name})


def test_a_changed_batch_size_does_not_rerun_phase1_but_a_synonym_does():
    bigger = merge(CONFIG, {"models": {"batch_size": {"cpu": {"audio": 99}}}})
    assert S.to_params(S.phase1_settings(bigger)) == S.to_params(S.phase1_settings(CONFIG))
    assert S.to_params(S.embed_settings(bigger, "audio", None, None)) != S.to_params(
        S.embed_settings(CONFIG, "audio", None, None)
    )
    words = merge(CONFIG, {"phase1": {"synonyms": {"audio": {"lpf": ["muffled"]}}}})
    assert S.to_params(S.phase1_settings(words)) != S.to_params(S.phase1_settings(CONFIG))


def test_the_decode_budget_reaches_the_image_jobs_and_their_memory_only():
    """preprocessing.image.decode_budget_mib: the vetting and embedding jobs of images get it and
    ask for threads x the extra MiB; audio jobs neither see it nor rerun for it."""
    assert _schema_default("preprocessing.image.decode_budget_mib") == (S.DEFAULT_DECODE_BUDGET_MIB)
    big = merge(CONFIG, {"preprocessing": {"image": {"decode_budget_mib": 2000}}})
    assert S.manifest_settings(big, "image", "v").decode_budget_mib == 2000
    assert S.embed_settings(big, "image", "blur", "low").decode_budget_mib == 2000
    for build in (lambda c: S.manifest_settings(c, "audio", "v"),
                  lambda c: S.embed_settings(c, "audio", "lpf", "low")):  # fmt: skip
        assert S.to_params(build(big)) == S.to_params(build(CONFIG))
    assert S.decode_mem_mb(CONFIG, "image", 2000, 2) == 2000  # the default: as declared
    assert S.decode_mem_mb(big, "image", 2000, 2) == 2000 + 2 * (2000 - 640)
    assert S.decode_mem_mb(big, "audio", 8000, 4) == 8000
    small = merge(CONFIG, {"preprocessing": {"image": {"decode_budget_mib": 100}}})
    assert S.decode_mem_mb(small, "image", 8000, 4) == 8000  # never below the declared


def test_a_grouped_job_gets_what_each_variant_job_would_and_shards_are_checked():
    group = S.embed_group_settings(CONFIG, "audio", [(None, None), ("lpf", "high")])
    assert group.variants == (
        S.embed_settings(CONFIG, "audio", None, None),
        S.embed_settings(CONFIG, "audio", "lpf", "high"),
    )
    assert S.extract_settings(CONFIG) == S.ExtractSettings(
        group=CONFIG["extract"]["group"], shard_files=0
    )
    assert _schema_default("extract.group") == "variant"
    sharded = merge(CONFIG, {"extract": {"shard_files": 2}})
    assert S.deltas_settings(sharded, "image").shards == 2
    with pytest.raises(ValueError, match="shard 2 of extract.shard_files: 2"):
        S.embed_settings(sharded, "image", None, None, 2)


def _job_functions():
    for path in sorted((ROOT / "src/delta_v2a/jobs").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("run_"):
                if node.name != "run_job" and node.name != "run_rule":
                    yield path.relative_to(ROOT), node


def test_jobs_take_paths_and_settings_and_repeat_no_default():
    jobs = list(_job_functions())
    assert len(jobs) >= 15
    for path, fn in jobs:
        names = [a.arg for a in fn.args.args + fn.args.kwonlyargs]
        assert names[:2] == ["inputs", "outputs"] and set(names) <= {
            "inputs",
            "outputs",
            "settings",
            "threads",
        }, f"{path}:{fn.name} takes {names}"
        defaults = fn.args.defaults + [d for d in fn.args.kw_defaults if d is not None]
        assert not defaults, f"{path}:{fn.name} repeats a default"


def test_rule_files_hold_rules_and_scripts_are_one_call():
    for path in sorted((ROOT / "workflow/rules").glob("*.smk")):
        # settings and input functions; the study's includes; the sweep's plan of pairs
        if path.name in ("common.smk", "study.smk", "sweep.smk"):
            continue
        top = [
            line
            for line in path.read_text().splitlines()
            if line and not line.startswith((" ", "#", "rule ", '"""', ")"))
        ]
        assert top == [], f"{path.name} holds Python outside rules: {top}"
    for path in sorted((ROOT / "workflow/scripts").glob("*.py")):
        calls = re.findall(r"^run_rule\(snakemake, \w+\)$", path.read_text(), re.M)
        assert len(calls) == 1 and len(path.read_text().splitlines()) == 4, path.name


# --------------------------------------------------------------------------- one decision


def test_every_reader_agrees_with_phase1_on_a_runner_up_pair():
    """Phase 1 chose blur's runner-up (lpf: its best score, highshelf, is not significant);
    Phase 3, the summary, the tables and the transfer payload all read that one decision."""
    from delta_v2a.artifacts.discovery import DiscoveryLabels
    from delta_v2a.artifacts.training_log import PairsChoice
    from delta_v2a.phase3.dataset import choose_pairs
    from delta_v2a.report.rows import discovery_rows, phase1_pairs
    from delta_v2a.report.summary import _phase1_verdict
    from delta_v2a.transfer.payload import _significance

    matrix = np.array([[0.02, 0.30], [0.01, 0.0]])
    pick = {"image_effect": "blur", "audio_effect": "lpf", "score": 0.02, "p_adjusted": 0.01}
    labels = DiscoveryLabels.build(
        {
            "image_effects": ["blur", "contrast"],
            "audio_effects": ["lpf", "highshelf"],
            "alpha": 0.05,
            "correction": "holm",
            "p": [[0.002, 0.01], [0.1, 0.5]],
            "p_adjusted": [[0.01, 0.2], [0.6, 1.0]],
            "chosen_pairs": [pick | {"rank_in_row": 2, "reason": "best significant cell"}],
            "sim1": {},
            "sim2": {},
            "sim3": [[0.1, 0.9], [0.1, 0.0]],
            "best_matches": [],
        }
    )
    rows = choose_pairs(matrix, labels.image_effects, labels.audio_effects, 0.0, [pick])
    used = [(r["image_effect"], r["audio_effect"]) for r in rows if r["chosen"]]
    assert used == [("blur", "lpf")]
    # the training log's copy of pairs.json's decision, through its type
    choice = PairsChoice.from_json({"rows": rows, "chosen": [r for r in rows if r["chosen"]]})
    log = SimpleNamespace(pairs=choice)
    frame = discovery_rows(matrix, labels, log).set_index(["image_effect", "audio_effect"])
    assert frame["chosen"].sum() == 1 and frame.loc[("blur", "lpf"), "chosen"]
    assert frame["used_by_phase3"].sum() == 1 and frame.loc[("blur", "lpf"), "used_by_phase3"]
    assert phase1_pairs(labels) == {("blur", "lpf")}
    verdict = _phase1_verdict(matrix, labels)
    assert "blur -> lpf (score 0.02, p_adjusted 0.01, rank 2 in its row)" in verdict["lines"]
    assert _significance(labels, "blur", "lpf")["significant"] is True
    assert _significance(labels, "blur", "highshelf")["significant"] is False


def test_phase3_seeds_are_a_count_from_the_run_seed_or_a_list():
    """phase3.seeds: a count starts at the run's seed (the first, designated seed is the
    one a one-seed run trained); a list is kept in order."""
    assert S.training_seeds(3, 5) == (5, 6, 7) and S.training_seeds(1, 0) == (0,)
    assert S.training_seeds([4, 1, 9], 0) == (4, 1, 9)
    default = S.phase3_settings(CONFIG, "ckpt")
    assert default.seeds == (CONFIG["seed"], CONFIG["seed"] + 1, CONFIG["seed"] + 2)
    listed = S.phase3_settings(merge(CONFIG, {"phase3": {"seeds": [11, 3]}}), "ckpt")
    assert listed.seeds == (11, 3) and listed.text2fx_budget == 8
