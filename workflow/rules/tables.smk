# Tidy exports (results/tables/*.tsv, one row per unit; columns in docs/tables.md) and the
# report's results section, read from the phases' own JSON outputs.

TABLE_NAMES = [
    "verdicts",
    "phase0_sensitivity",
    "phase0_consistency",
    "phase0_invariance",
    "phase1_discovery",
    "phase3_results",
]
TABLE_CAPTIONS = {
    "verdicts": "every phase's verdict (from results/summary.json)",
    "phase0_sensitivity": "Phase 0-a, one row per (modality, effect, intensity)",
    "phase0_consistency": "Phase 0-b, one row per (modality, effect, intensity, category)",
    "phase0_invariance": "Phase 0-b, one row per (modality, effect, intensity)",
    "phase1_discovery": "Phase 1, one row per (image effect, audio effect)",
    "phase3_results": "Phase 3, one row per (split, metric, candidate)",
}
TABLES_RESULTS = [f"results/tables/{name}.tsv" for name in TABLE_NAMES] + [
    "results/tables/provenance.json",
    "results/report/front.html",
]


rule tables:
    """Tidy TSV exports of Phase 0, 1 and 3 and the report's results section (tables, the
    discovery matrix with the chosen pairs marked, playable examples)."""
    input:
        summary="results/summary.json",
        sensitivity="results/sensitivity_results.json",
        linearity="results/linearity_results.json",
        cross="results/cross_category_variance.json",
        matrix="results/discovery_matrix.npy",
        labels="results/discovery_labels.json",
        training_log="results/training_log.json",
        predictions="results/parameter_predictions",
    output:
        **{
            name: report(
                f"results/tables/{name}.tsv",
                caption="../report/tables.rst",
                category="Tables",
                labels={"table": name, "rows": TABLE_CAPTIONS[name]},
            )
            for name in TABLE_NAMES
        },
        provenance="results/tables/provenance.json",
        front="results/report/front.html",
    log:
        "logs/tables.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/tables.py"
