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
    text_bridge=snakemake.params.text_bridge,
    clip_negative=snakemake.params.clip_negative,
    templates=snakemake.params.templates,
    synonyms=snakemake.params.synonyms,
    matrix_out=snakemake.output.matrix,
    labels_out=snakemake.output.labels,
    components_out=snakemake.output.components,
    heatmap_out=snakemake.output.heatmap,
    threads=snakemake.threads,
)
