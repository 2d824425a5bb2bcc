from delta_v2a.jobs.common import run_job
from delta_v2a.jobs.extract import run_health

run_job(
    snakemake.log[0],
    run_health,
    modality=snakemake.wildcards.modality,
    model=snakemake.params.model,
    limit=snakemake.params.limit,
    output=snakemake.output[0],
    threads=snakemake.threads,
)
