# Delta V2A at the repository root: `snakemake --cores 8` (or any target) from a checkout runs
# the workflow of the standard layout, workflow/Snakefile (docs/deploy.md has the module and
# snakedeploy routes). Not `include:`, which would drop the default target (`rule all`) that
# workflow/Snakefile sets.

workflow.include("workflow/Snakefile", overwrite_default_target=True)
