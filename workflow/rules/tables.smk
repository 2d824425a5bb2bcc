# Tidy exports (results/tables/*.tsv, one row per unit; columns in docs/tables.md) and the
# report's results section, read from the phases' own JSON outputs.


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
        transfer="results/transfer",
    output:
        **{
            name: report(
                f"results/tables/{name}.tsv",
                caption="../report/tables.rst",
                category="Tables",
                labels={"table": name, "rows": TABLES[name]},
            )
            for name in TABLES
        },
        provenance="results/tables/provenance.json",
        front="results/report/front.html",
        # the Transfer section as its own report entry (players embedded; transfer.rst)
        transfer=report(
            "results/report/transfer.html",
            caption="../report/transfer.rst",
            category="Transfer",
        ),
    log:
        "logs/tables.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/tables.py"
