from delta_v2a.jobs.common import run_rule
from delta_v2a.jobs.split import run_split

run_rule(snakemake, run_split)
