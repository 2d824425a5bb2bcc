from delta_v2a.jobs.common import run_rule
from delta_v2a.jobs.health import run_health

run_rule(snakemake, run_health)
