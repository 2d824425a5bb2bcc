from delta_v2a.jobs.common import run_job
from delta_v2a.jobs.phase3 import run_dataset

run_job(
    snakemake.log[0],
    run_dataset,
    matrix=snakemake.input.matrix,
    labels=snakemake.input.labels,
    manifest=snakemake.input.manifest,
    health=list(snakemake.input.health),
    allow_unhealthy=snakemake.params.allow_unhealthy,
    model=dict(snakemake.params.model),
    effects_config=snakemake.params.effects_config,
    threshold=snakemake.params.threshold,
    alpha=snakemake.params.alpha,
    require_significant=snakemake.params.require_significant,
    level_words=list(snakemake.params.level_words),
    descriptions=dict(snakemake.params.descriptions),
    heldout_templates=snakemake.params.heldout_templates,
    levels_per_pair=snakemake.params.levels_per_pair,
    split=dict(snakemake.params.split),
    bypass_below=snakemake.params.bypass_below,
    seed=snakemake.params.seed,
    pairs_out=snakemake.output.pairs,
    samples_out=snakemake.output.samples,
    texts_out=snakemake.output.texts,
    threads=snakemake.threads,
)
