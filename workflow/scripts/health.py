from delta_v2a.pipeline.common import run_job
from delta_v2a.pipeline.extract import run_health

run_job(
    snakemake.log[0],
    run_health,
    modality=snakemake.wildcards.modality,
    model=snakemake.params.model,
    limit=snakemake.params.limit,
    output=snakemake.output[0],
    threads=snakemake.threads,
)
