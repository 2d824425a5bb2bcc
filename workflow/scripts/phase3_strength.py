from delta_v2a.jobs.common import run_job
from delta_v2a.jobs.phase3 import run_strength

run_job(
    snakemake.log[0],
    run_strength,
    manifest=snakemake.input.manifest,
    pairs=snakemake.input.pairs,
    samples=snakemake.input.samples,
    sensitivity=snakemake.input.sensitivity,
    model=dict(snakemake.params.model),
    intensities=list(snakemake.params.intensities),
    grid_size=snakemake.params.grid_size,
    preroll_s=snakemake.params.preroll_s,
    target=snakemake.params.target,
    min_sd=snakemake.params.min_sd,
    cache_dir=snakemake.params.cache_dir,
    curves_out=snakemake.output.curves,
    targets_out=snakemake.output.targets,
    dependence_out=snakemake.output.dependence,
    threads=snakemake.threads,
)
