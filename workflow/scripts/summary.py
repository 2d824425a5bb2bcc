from delta_v2a.jobs.common import run_job
from delta_v2a.jobs.summary import run_summary

run_job(
    snakemake.log[0],
    run_summary,
    health=list(snakemake.input.health),
    sensitivity=snakemake.input.sensitivity,
    linearity=snakemake.input.linearity,
    cross=snakemake.input.cross,
    discovery=snakemake.input.matrix,
    labels=snakemake.input.labels,
    threshold=snakemake.params.threshold,
    training_log=snakemake.input.training_log,
    json_out=snakemake.output.json,
    text_out=snakemake.output.text,
)
