# Delta V2A: do CLIP and CLAP embeddings move the same way under image and audio effects?
# The rules live in workflow/rules/, one file per phase; logic lives in src/delta_v2a.


from pathlib import Path


# The study overlay (data roots) comes from the repository; defaults come from the schema
# (workflow/rules/common.smk merges them under it); `--configfile my.yaml` overrides either.
configfile: Path(workflow.basedir) / "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/extract.smk"
# The model jobs of extraction: extract.group picks which rules exist (docs/methods.md §2.2).
# Each writes one table per variant, so no later rule depends on the grouping. Not Snakemake's
# `group:` directive: a job group still starts one process per rule job, each loading its model.
include: f"workflow/rules/embed_{EXTRACT.group}.smk"


if EXTRACT.group != "modality":

    include: "workflow/rules/embed_original.smk"


if EXTRACT.shard_files:

    include: "workflow/rules/embed_shards.smk"


include: "workflow/rules/phase0.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/phase1.smk"
include: "workflow/rules/phase3.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/transfer.smk"


report: "workflow/report/workflow.rst"


rule extract:
    """The seed's `extract` verb: both modalities' deltas (JSON records and compact stores) and
    the model health checks, without any analysis."""
    input:
        SEED_JSON_FILES,
        expand("results/{modality}_deltas.npz", modality=MODALITIES),
        expand("results/health/{modality}.json", modality=MODALITIES),
        "results/skipped_files.tsv",


rule all:
    default_target: True
    input:
        PHASE0_RESULTS,
        PHASE1_RESULTS,
        PHASE3_RESULTS,
        SUMMARY_RESULTS,
        TRANSFER_RESULTS,
        TABLES_RESULTS,
