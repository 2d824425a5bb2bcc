from delta_v2a.jobs.common import run_job
from delta_v2a.jobs.phase3 import run_train

run_job(
    snakemake.log[0],
    run_train,
    windows=snakemake.input.windows,
    samples=snakemake.input.samples,
    pairs=snakemake.input.pairs,
    texts=snakemake.input.texts,
    targets=snakemake.input.targets,
    curves=snakemake.input.curves,
    dependence=snakemake.input.dependence,
    model_out=snakemake.output.model,
    log_out=snakemake.output.log,
    predictions_dir=snakemake.output.predictions,
    training_figure=snakemake.output.training,
    predictions_figure=snakemake.output.scatter,
    architecture=dict(snakemake.params.architecture),
    training=dict(snakemake.params.training),
    target=snakemake.params.target,
    seed=snakemake.params.seed,
    validation=dict(snakemake.params.validation),
    bootstrap=snakemake.params.bootstrap,
    log_every=snakemake.params.log_every,
    preroll_s=snakemake.params.preroll_s,
    checkpoint_dir=snakemake.params.checkpoint_dir,
    checkpoint_interval_s=snakemake.params.checkpoint_interval_s,
    device=snakemake.params.device,
    threads=snakemake.threads,
    transfer_inputs={
        k: snakemake.input[k] for k in ("image_store", "audio_store", "sensitivity", "labels")
    },
    u_grid=snakemake.params.u_grid,
)
