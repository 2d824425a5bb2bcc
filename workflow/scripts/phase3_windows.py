from delta_v2a.jobs.common import run_rule
from delta_v2a.jobs.phase3 import run_windows

run_rule(snakemake, run_windows)
