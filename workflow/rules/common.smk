import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

# One import route: the workflow's own src/ goes first on the import path of this process and
# of every job it starts (export_own_src; a SLURM job re-parses this file and gets the same).
# An installed copy of the package elsewhere can never shadow the code being run; each job
# checks this at start (delta_v2a.jobs.common.check_code_origin). Per-rule conda envs need no
# install step either.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from delta_v2a.jobs.common import export_own_src

export_own_src(Path(workflow.basedir) / "src")

import yaml

from delta_v2a.config import (
    MODALITIES,
    check_config,
    check_data_roots,
    check_keys,
    check_models,
    effect_names,
    effect_params,
)
from delta_v2a import __version__ as VERSION
from delta_v2a.extract import media_inventory
from delta_v2a.storage import write_if_changed

# A typo gets one line with the closest valid key before validate() prints the whole schema.
SCHEMA = Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"
check_keys(config, yaml.safe_load(SCHEMA.read_text(encoding="utf-8")))
validate(config, "../schemas/config.schema.yaml")
check_config(config)
check_models(config)

INTENSITIES = list(config["intensities"])
EFFECTS = {m: effect_names(config, m) for m in MODALITIES}
DATA_ROOT = {"image": config["data"]["images"], "audio": config["data"]["audio"]}
DATA_KEY = {"image": "data.images", "audio": "data.audio"}

# One walk of each data root per Snakemake invocation; a missing or empty root stops here, at
# parse time, naming the key (not when the manifest job runs). The walk is summarised (path,
# size, mtime) in an inventory file rewritten only when it changes: the manifest rule's one
# input, so an added, removed or changed file reruns the manifest, a console line stays short at
# 10^4 files, and names Snakemake cannot track as paths ({ }, not UTF-8) are data like any other.
DISCOVERED = check_data_roots(config)
MEDIA = {m: [f.path for f in files] for m, files in DISCOVERED.items()}
INVENTORY = {m: f"results/manifest/{m}.inventory.tsv" for m in MODALITIES}
for _m in MODALITIES:
    write_if_changed(INVENTORY[_m], media_inventory(DISCOVERED[_m]))

ENV = "../../envs/delta_v2a.yaml"
# Content-addressed embedding cache (outside Snakemake's bookkeeping: a rerun job reuses it).
CACHE_DIR = config["cache"]["dir"] if config["cache"]["enabled"] else None


wildcard_constraints:
    modality="image|audio",
    effect="|".join(sorted(set(EFFECTS["image"]) | set(EFFECTS["audio"]))),
    intensity="|".join(INTENSITIES),


def model_params(modality):
    """Everything about the model that changes an embedding (a change reruns the job)."""
    models = config["models"]
    return {
        "name_or_path": models[modality],
        "revision": models["revision"][modality],
        "device": models["device"],
        "dtype": models["dtype"],
        "normalize": models["normalize"],
        # per device kind; the job picks the one it runs on (jobs.common.job_batch_size)
        "batch_size": {k: models["batch_size"][k][modality] for k in ("cpu", "cuda")},
        "dim": models["dim"][modality],
    }


def variant_embeddings(modality):
    return [
        f"results/embeddings/{modality}/{effect}/{intensity}.npz"
        for effect in EFFECTS[modality]
        for intensity in INTENSITIES
    ]
