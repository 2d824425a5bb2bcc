import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

# One import route: the workflow's own src/ goes first on the import path of this process and
# of every job it starts (export_own_src; a SLURM job re-parses this file and gets the same).
# An installed copy of the package elsewhere can never shadow the code being run; each job
# checks this at start (delta_v2a.jobs.common.check_code_origin). Per-rule conda envs need no
# install step either. The folder is this file's own (workflow.current_basedir), not
# workflow.basedir: imported as a module (docs/deploy.md), basedir is the importing workflow's.
# A workflow read from a remote source (snakedeploy's github(...)) has no local src/: there the
# package must be installed (docs/deploy.md).
RULES_DIR = Path(workflow.current_basedir.get_path_or_uri(secret_free=True))
OWN_SRC = RULES_DIR.parents[1] / "src"
if OWN_SRC.is_dir():
    sys.path.insert(0, str(OWN_SRC))

from delta_v2a.jobs.common import export_own_src

if OWN_SRC.is_dir():
    export_own_src(OWN_SRC)

import yaml

from delta_v2a.config import (
    MODALITIES,
    ConfigError,
    check_config_for_console,
    check_data_roots,
    check_data_size,
    check_keys,
    check_models,
    data_inventory,
    effect_names,
    effect_params,
    one_line_refusal,
    plan_inventory,
    with_defaults,
)
from delta_v2a import __version__ as VERSION
from delta_v2a.inventory import inventory_digest
from delta_v2a.report.rows import TABLES
from delta_v2a.settings import (
    dataset_settings,
    decode_mem_mb,
    deltas_settings,
    embed_settings,
    embed_group_settings,
    examples_settings,
    extract_settings,
    health_settings,
    linearity_settings,
    manifest_settings,
    phase1_settings,
    sensitivity_settings,
    split_settings,
    strength_settings,
    to_params,
    phase3_settings,
    windows_settings,
)
from delta_v2a.storage import write_if_changed
from delta_v2a.resources import (
    mem_mb as cost_mem_mb,
    runtime_min as cost_runtime_min,
    vet_runtime_min,
)

# A typo gets one line with the closest valid key before validate() prints the whole schema.
# The schema owns every default (config/config.yaml is an overlay): they are merged under the
# config files here, mappings key by key, as Snakemake merges the files themselves.
SCHEMA_PATH = RULES_DIR.parent / "schemas/config.schema.yaml"
if not SCHEMA_PATH.is_file():  # a remote workflow: Snakemake's source cache fetches it
    SCHEMA_PATH = Path(workflow.source_path("../schemas/config.schema.yaml"))
SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))
with one_line_refusal():  # a refusal is one line, not the parse's Python frames
    check_keys(config, SCHEMA)
    config.update(with_defaults(config, SCHEMA))
    validate(config, "../schemas/config.schema.yaml", set_default=False)
    check_config_for_console(config)
    check_models(config)

INTENSITIES = list(config["intensities"])
EFFECTS = {m: effect_names(config, m) for m in MODALITIES}

# One walk of each data root per Snakemake invocation; a missing, empty or unreadable root stops
# here, at parse time, naming the key (not when the manifest job runs). The walk is summarised
# (path, size, SHA-256 of the bytes; docs/methods.md §2.1) in an inventory rewritten only when it
# changes; a file's hash is cached per (path, size, mtime, ctime) under .snakemake/, so a parse
# reads only new or changed files. The manifest's vetted output is named by the inventory's
# digest: the same bytes (touched, copied back, restored) map to the same file and plan nothing,
# and a failed vetting of new files never touches the last good manifest.
INVENTORY = {m: f"results/manifest/{m}.inventory.tsv" for m in MODALITIES}


def in_this_run(path):
    """``path`` where this copy of the rules puts it: under the module's prefix when a model
    sweep imports the study once per pair (docs/sweep.md), else as it is. For paths that are
    not a rule's input or output (written at parse time, or passed in params), which
    Snakemake's prefix does not reach."""
    prefix = workflow.modifier.path_modifier.prefix
    return f"{prefix}{path}" if prefix else path


DIGEST, N_FILES = {}, {}
with one_line_refusal():
    DISCOVERED = check_data_roots(config)
    for _m in MODALITIES:
        _text = data_inventory(config, _m, DISCOVERED[_m])
        # benchmarks/extraction.py plans 10^6 files without media: its prepared inventory
        # replaces the walk's (delta_v2a.config.plan_inventory; a workflow run has none).
        if plan_inventory(_m):
            _text = Path(plan_inventory(_m)).read_text(encoding="utf-8")
        write_if_changed(in_this_run(INVENTORY[_m]), _text)
        DIGEST[_m] = inventory_digest(_text)
        # Files the study will see: the inventory's rows (a header line, then one per file).
        N_FILES[_m] = _text.count("\n") - 1
MEDIA = {m: [f.path for f in files] for m, files in DISCOVERED.items()}

# Enough audio for what was asked, said before any job runs (delta_v2a.config.check_data_size):
# an input function of the split and phase3_dataset rules, so it is checked when the DAG is
# built and only when the target needs that rule (`sensitivity` on 2 songs still runs). Too
# few test files to train refuses with the numbers; fewer than a verdict needs warns once.
_SIZE_WARNED = set()


def data_size_gate(stage):
    def gate(wildcards):
        with one_line_refusal():
            refusal, warning = check_data_size(config, N_FILES["audio"], stage)
            if refusal:
                raise ConfigError(refusal)
        if warning and stage not in _SIZE_WARNED:
            _SIZE_WARNED.add(stage)
            print(f"Warning: {warning}", file=sys.stderr)
        return []

    return gate


ENV = "../../envs/delta_v2a.yaml"


wildcard_constraints:
    modality="image|audio",
    effect="|".join(sorted(set(EFFECTS["image"]) | set(EFFECTS["audio"]))),
    intensity="|".join(INTENSITIES),
    shard="[0-9]+",


# How extraction is cut into jobs (extract.group, extract.shard_files; docs/methods.md §2.2).
# With file shards each variant's table is written in parts, ".../<variant>.part<k>.npz".
EXTRACT = extract_settings(config)
PART = ".part{shard}" if EXTRACT.shard_files else ""


# Vetting is cut like extraction: with extract.shard_files, one job per shard of the sorted
# files, named by the same inventory digest (docs/methods.md §2.1-2.2).
VET_PART = ".part{shard}" if EXTRACT.shard_files else ""


def vetted_parts(modality, kind):
    """The vetted files of the current data state (kind "" or "_skipped"): one, or one per
    vetting shard."""
    stem = f"results/manifest/vetted/{modality}{kind}.{DIGEST[modality]}"
    if not EXTRACT.shard_files:
        return [f"{stem}.tsv"]
    return [f"{stem}.part{k}.tsv" for k in range(EXTRACT.shard_files)]


def embedding_parts(modality, variant):
    """The tables of one variant ("original" or "effect/intensity"): one, or one per shard."""
    if not EXTRACT.shard_files:
        return [f"results/embeddings/{modality}/{variant}.npz"]
    return [
        f"results/embeddings/{modality}/{variant}.part{k}.npz"
        for k in range(EXTRACT.shard_files)
    ]


def shard_of(wildcards):
    return int(wildcards.shard) if EXTRACT.shard_files else 0


def modality_group(modality):
    """The originals, then every effect x intensity: what one `modality` job embeds."""
    return [(None, None)] + [(e, i) for e in EFFECTS[modality] for i in INTENSITIES]


def modality_group_outputs(modality):
    return [
        (
            f"results/embeddings/{modality}/{e}/{i}{PART}.npz"
            if e
            else f"results/embeddings/{modality}/original{PART}.npz"
        )
        for e, i in modality_group(modality)
    ]


def modality_group_params(modality):
    return lambda wc: to_params(
        embed_group_settings(config, modality, modality_group(modality), shard_of(wc))
    )


def variant_embeddings(modality):
    return [
        path
        for effect in EFFECTS[modality]
        for intensity in INTENSITIES
        for path in embedding_parts(modality, f"{effect}/{intensity}")
    ]


# The seed's per-record JSON (extract.seed_json, docs/methods.md §2.3): full, gzip (".json.gz")
# or none (the deltas rule declares no JSON output; no later rule reads it).
SEED_JSON_SUFFIX = dict(full=".json", gzip=".json.gz", none="")
SEED_JSON = (
    f"results/{{modality}}_deltas{SEED_JSON_SUFFIX[config['extract']['seed_json']]}"
    if config["extract"]["seed_json"] != "none"
    else None
)
SEED_JSON_OUTPUT = {"json": SEED_JSON} if SEED_JSON else {}
SEED_JSON_FILES = (
    [SEED_JSON.format(modality=m) for m in MODALITIES] if SEED_JSON else []
)


def job_mem_mb(rule, inputs, modality="image"):
    """A job's mem_mb from its inputs' sizes (delta_v2a.resources, docs/methods.md §2.4)."""
    n_effects = len(EFFECTS[modality])
    variants = n_effects * len(INTENSITIES)
    return cost_mem_mb(rule, inputs.size_files_mb, variants, n_effects)


def job_runtime(rule, inputs):
    return cost_runtime_min(rule, inputs.size_files_mb)


# --------------------------------------------------------------------------- targets
# What each phase writes (the seed's artifacts); `rule all` and the verbs in the Snakefile ask
# for these, and the tests check them against the rules' outputs.

PHASE0_RESULTS = [
    *SEED_JSON_FILES,
    "results/sensitivity_results.json",
    "results/linearity_results.json",
    "results/cross_category_variance.json",
    "results/skipped_files.tsv",
]
PHASE1_RESULTS = [
    "results/discovery_matrix.npy",
    "results/discovery_labels.json",
    "results/discovery.tsv",
    "results/discovery_heatmap.png",
    "results/discovery_components.png",
    "results/discovery_per_intensity.png",
]
PHASE3_RESULTS = [
    "results/decoder_model.pt",
    "results/training_log.json",
    "results/parameter_predictions",
]
SUMMARY_RESULTS = ["results/summary.json", "results/summary.txt"]
TRANSFER_RESULTS = ["results/transfer"]
TABLES_RESULTS = [f"results/tables/{name}.tsv" for name in TABLES] + [
    "results/tables/provenance.json",
    "results/report/front.html",
    "results/report/transfer.html",
]
