from delta_v2a.jobs.common import run_job
from delta_v2a.jobs.transfer import run_examples

run_job(
    snakemake.log[0],
    run_examples,
    model=snakemake.input.model,
    image_manifest=snakemake.input.image_manifest,
    samples=snakemake.input.samples,
    pairs=snakemake.input.pairs,
    output_dir=snakemake.output[0],
    edit_levels={
        e: {k: dict(v) for k, v in dict(levels).items()}
        for e, levels in dict(snakemake.params.edit_levels).items()
    },
    n_examples=snakemake.params.n_examples,
    device=snakemake.params.device,
)
