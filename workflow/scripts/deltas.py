from delta_v2a.jobs.common import run_job
from delta_v2a.jobs.extract import run_deltas

run_job(
    snakemake.log[0],
    run_deltas,
    modality=snakemake.wildcards.modality,
    original=snakemake.input.original,
    variants=list(snakemake.input.variants),
    effects=snakemake.params.effects,
    intensities=snakemake.params.intensities,
    json_out=snakemake.output.json,
    store_out=snakemake.output.store,
    meta_out=snakemake.output.meta,
)
