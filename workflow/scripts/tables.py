from delta_v2a.jobs.common import run_job
from delta_v2a.jobs.tables import TABLES, run_tables

run_job(
    snakemake.log[0],
    run_tables,
    summary=snakemake.input.summary,
    sensitivity=snakemake.input.sensitivity,
    linearity=snakemake.input.linearity,
    cross=snakemake.input.cross,
    matrix=snakemake.input.matrix,
    labels=snakemake.input.labels,
    training_log=snakemake.input.training_log,
    predictions=snakemake.input.predictions,
    tables={name: snakemake.output[name] for name in TABLES},
    provenance_out=snakemake.output.provenance,
    front_out=snakemake.output.front,
)
