from delta_v2a.jobs.common import run_job
from delta_v2a.jobs.extract import run_skipped

run_job(snakemake.log[0], run_skipped, inputs=list(snakemake.input), output=snakemake.output[0])
