from delta_v2a.jobs.common import run_job
from delta_v2a.jobs.phase3 import run_windows

run_job(
    snakemake.log[0],
    run_windows,
    manifest=snakemake.input.manifest,
    original=snakemake.input.original,
    output=snakemake.output[0],
    model=dict(snakemake.params.model),
    count=snakemake.params.n_windows,
    hop_s=snakemake.params.hop_s,
    cache_dir=snakemake.params.cache_dir,
    threads=snakemake.threads,
)
