# One study: one image model and one audio model on one data set (the seed's verbs as targets).
# Included by workflow/Snakefile; a model sweep includes it once per pair, as a module.


include: "common.smk"
include: "extract.smk"
# The model jobs of extraction: extract.group picks which rules exist (docs/methods.md §2.2).
# Each writes one table per variant, so no later rule depends on the grouping. Not Snakemake's
# `group:` directive: a job group still starts one process per rule job, each loading its model.
include: f"embed_{EXTRACT.group}.smk"


if EXTRACT.group != "modality":

    include: "embed_original.smk"


if EXTRACT.shard_files:

    include: "embed_shards.smk"


include: "phase0.smk"
include: "split.smk"
include: "phase1.smk"
include: "phase3.smk"
include: "summary.smk"
include: "tables.smk"
include: "transfer.smk"


report: "../report/workflow.rst"


rule extract:
    """The seed's `extract` verb: both modalities' deltas (JSON records and compact stores) and
    the model health checks, without any analysis."""
    input:
        SEED_JSON_FILES,
        expand("results/{modality}_deltas.npz", modality=MODALITIES),
        expand("results/health/{modality}.json", modality=MODALITIES),
        "results/skipped_files.tsv",


# What `all` asks for in one study (workflow/Snakefile defines the rule: a default target set in
# an included file does not count).
STUDY_RESULTS = [
    *PHASE0_RESULTS,
    *PHASE1_RESULTS,
    *PHASE3_RESULTS,
    *SUMMARY_RESULTS,
    *TRANSFER_RESULTS,
    *TABLES_RESULTS,
]
