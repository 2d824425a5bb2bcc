from delta_v2a.jobs.common import run_rule
from delta_v2a.jobs.phase1 import run_phase1

run_rule(snakemake, run_phase1)
