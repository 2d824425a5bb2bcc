from delta_v2a.jobs.common import run_rule
from delta_v2a.jobs.manifest import run_manifest

run_rule(snakemake, run_manifest)
