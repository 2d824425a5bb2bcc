from delta_v2a.jobs.common import run_rule
from delta_v2a.jobs.transfer import run_examples

run_rule(snakemake, run_examples)
