from delta_v2a.jobs.common import run_job
from delta_v2a.jobs.extract import run_embed

run_job(
    snakemake.log[0],
    run_embed,
    modality=snakemake.wildcards.modality,
    manifest=snakemake.input.manifest,
    output=snakemake.output[0],
    model=snakemake.params.model,
    effect=snakemake.params.effect,
    intensity=snakemake.wildcards.get("intensity"),
    effect_params=snakemake.params.effect_params,
    preroll_s=snakemake.params.preroll_s,
    cache_dir=snakemake.params.cache_dir,
    threads=snakemake.threads,
)
