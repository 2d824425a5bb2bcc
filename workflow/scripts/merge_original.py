from delta_v2a.jobs.common import run_rule
from delta_v2a.jobs.embed import run_merge_original

run_rule(snakemake, run_merge_original)
