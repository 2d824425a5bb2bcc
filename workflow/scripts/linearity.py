from delta_v2a.jobs.common import run_job
from delta_v2a.jobs.phase0 import run_linearity

run_job(
    snakemake.log[0],
    run_linearity,
    stores=list(snakemake.input.stores),
    health=list(snakemake.input.health),
    thresholds=dict(snakemake.params.thresholds),
    allow_unhealthy=snakemake.params.allow_unhealthy,
    json_out=snakemake.output.json,
    cross_out=snakemake.output.cross,
    figure_out=snakemake.output.figure,
)
