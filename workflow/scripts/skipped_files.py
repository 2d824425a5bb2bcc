from delta_v2a.pipeline.common import run_job
from delta_v2a.pipeline.extract import run_skipped

run_job(snakemake.log[0], run_skipped, inputs=list(snakemake.input), output=snakemake.output[0])
