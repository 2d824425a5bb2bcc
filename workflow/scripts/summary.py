from delta_v2a.jobs.common import run_rule
from delta_v2a.jobs.summary import run_summary

run_rule(snakemake, run_summary)
