from delta_v2a.jobs.common import run_rule
from delta_v2a.jobs.embed import run_embed_group

run_rule(snakemake, run_embed_group)
