from delta_v2a.jobs.common import run_rule
from delta_v2a.jobs.extract import run_manifest_parts

run_rule(snakemake, run_manifest_parts)
