from delta_v2a.jobs.common import run_rule
from delta_v2a.jobs.sweep import run_sweep

run_rule(snakemake, run_sweep)
