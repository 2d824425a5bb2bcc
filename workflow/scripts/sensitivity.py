from delta_v2a.jobs.common import run_rule
from delta_v2a.jobs.phase0 import run_sensitivity

run_rule(snakemake, run_sensitivity)
