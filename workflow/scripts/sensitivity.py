from delta_v2a.jobs.common import run_job
from delta_v2a.jobs.phase0 import run_sensitivity

run_job(
    snakemake.log[0],
    run_sensitivity,
    stores=list(snakemake.input.stores),
    health=list(snakemake.input.health),
    min_distance=snakemake.params.min_distance,
    allow_unhealthy=snakemake.params.allow_unhealthy,
    json_out=snakemake.output.json,
    figure_out=snakemake.output.figure,
)
