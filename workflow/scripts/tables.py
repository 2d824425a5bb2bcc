from delta_v2a.jobs.common import run_rule
from delta_v2a.jobs.tables import run_tables

run_rule(snakemake, run_tables)
