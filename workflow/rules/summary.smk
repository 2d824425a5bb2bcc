# The end-of-run summary: every phase's verdict in one place (the `all` target ends with it).


rule summary:
    """Every phase's verdict in one place, printed at the end of the run; loud on failures."""
    input:
        health=expand("results/health/{modality}.json", modality=MODALITIES),
        sensitivity="results/sensitivity_results.json",
        linearity="results/linearity_results.json",
        cross="results/cross_category_variance.json",
        matrix="results/discovery_matrix.npy",
        labels="results/discovery_labels.json",
        training_log="results/training_log.json",
    output:
        json="results/summary.json",
        text="results/summary.txt",
    log:
        "logs/summary.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/summary.py"
