# The model sweep (docs/sweep.md): the whole study once per named (image model, audio model)
# pair, each a module of this same workflow under its own folder, then one comparison.
# Included by workflow/Snakefile when the config has `sweep:`.

import sys
from pathlib import Path

# The package from this workflow's own src/ (as rules/common.smk does for a study).
_SRC = (
    Path(workflow.current_basedir.get_path_or_uri(secret_free=True)).parents[1] / "src"
)
if _SRC.is_dir():
    sys.path.insert(0, str(_SRC))

import yaml

from delta_v2a.config import one_line_refusal
from delta_v2a.settings import to_params
from delta_v2a.sweep import check_sweep, plan_pairs, read_config_file, sweep_settings

SWEEP_SCHEMA = yaml.safe_load(
    (_SRC.parent / "workflow/schemas/sweep.schema.yaml").read_text(encoding="utf-8")
    if _SRC.is_dir()
    else Path(workflow.source_path("../schemas/sweep.schema.yaml")).read_text(
        encoding="utf-8"
    )
)
with one_line_refusal():
    check_sweep(config, SWEEP_SCHEMA)
    PAIRS = plan_pairs(config, read_config_file)


report: "../report/workflow.rst"


# One module per pair: the study's rules as `<pair>_<rule>`, every path under the pair's folder
# (Snakemake's module prefix). Embeddings are cached by content and model (cache.dir, shared),
# so a model two pairs share is embedded once when their jobs do not run at the same time.
for pair in PAIRS:
    module_name = f"pair_{pair.name}"
    rules_prefix = f"{pair.name}_"

    module:
        name: module_name
        snakefile:
            "../Snakefile"
        config:
            pair.config
        prefix:
            pair.prefix

    use rule * from module_name as rules_prefix*


rule sweep_compare:
    """How far the pairs agree: verdicts per pair, Spearman between discovery matrices, which
    audio effect each image effect got, from each pair's own summary and Phase 1 files.
    """
    input:
        summaries=[p.path("results/summary.json") for p in PAIRS],
        matrices=[p.path("results/discovery_matrix.npy") for p in PAIRS],
        labels=[p.path("results/discovery_labels.json") for p in PAIRS],
    output:
        table=report(
            "results/sweep/agreement.tsv",
            caption="../report/sweep.rst",
            category="Model sweep",
        ),
        figure=report(
            "results/sweep/agreement.png",
            caption="../report/sweep.rst",
            category="Model sweep",
        ),
        section="results/sweep/section.html",
    log:
        "logs/sweep/compare.log",
    localrule: True
    conda:
        "../../envs/delta_v2a.yaml"
    params:
        settings=to_params(sweep_settings(PAIRS)),
    script:
        "../scripts/sweep.py"


SWEEP_RESULTS = [
    *(f for p in PAIRS for f in getattr(rules, f"{p.name}_all").input),
    *rules.sweep_compare.output,
]
