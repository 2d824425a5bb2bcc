from delta_v2a.jobs.common import run_rule
from delta_v2a.jobs.deltas import run_deltas

run_rule(snakemake, run_deltas)
