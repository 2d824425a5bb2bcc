from delta_v2a.jobs import run_job, run_skipped

run_job(snakemake.log[0], run_skipped, inputs=list(snakemake.input), output=snakemake.output[0])
