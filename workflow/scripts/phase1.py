from delta_v2a.jobs.common import run_job
from delta_v2a.jobs.phase1 import run_phase1

run_job(
    snakemake.log[0],
    run_phase1,
    image_store=snakemake.input.image,
    audio_store=snakemake.input.audio,
    health=list(snakemake.input.health),
    models=dict(snakemake.params.models),
    allow_unhealthy=snakemake.params.allow_unhealthy,
    options=dict(snakemake.params.options),
    templates=snakemake.params.templates,
    synonyms=snakemake.params.synonyms,
    matrix_out=snakemake.output.matrix,
    labels_out=snakemake.output.labels,
    components_out=snakemake.output.components,
    table_out=snakemake.output.table,
    figures={
        "heatmap": snakemake.output.heatmap,
        "panels": snakemake.output.panels,
        "intensity": snakemake.output.intensity,
    },
    threads=snakemake.threads,
)
