from delta_v2a.jobs.common import run_job
from delta_v2a.jobs.extract import run_manifest

run_job(
    snakemake.log[0],
    run_manifest,
    modality=snakemake.wildcards.modality,
    root=snakemake.params.root,
    key=snakemake.params.key,
    on_bad_file=snakemake.params.on_bad_file,
    preroll_s=snakemake.params.preroll_s,
    manifest_out=snakemake.output.manifest,
    skipped_out=snakemake.output.skipped,
    threads=snakemake.threads,
    lead_s=snakemake.params.lead_s,
)
