# Phase 0: are the deltas sensitive (0-a), consistent and context-invariant (0-b)?


rule sensitivity:
    """Phase 0-a: per (modality, effect, intensity) statistics of the delta norms."""
    input:
        stores=expand("results/{modality}_deltas.npz", modality=MODALITIES),
        health=expand("results/health/{modality}.json", modality=MODALITIES),
    output:
        json="results/sensitivity_results.json",
        figure=report(
            "results/figures/sensitivity.png",
            caption="../report/sensitivity.rst",
            category="Phase 0",
            subcategory="0-a sensitivity",
            labels={"figure": "norm of the delta per effect and intensity"},
        ),
    log:
        "logs/sensitivity.log",
    benchmark:
        "results/benchmarks/sensitivity.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=lambda wc, input: job_mem_mb("sensitivity", input),
        runtime=lambda wc, input: job_runtime("sensitivity", input),
    params:
        settings=to_params(sensitivity_settings(config)),
    script:
        "../scripts/sensitivity.py"


rule linearity:
    """Phase 0-b: within-category consistency and cross-category invariance."""
    input:
        stores=expand("results/{modality}_deltas.npz", modality=MODALITIES),
        health=expand("results/health/{modality}.json", modality=MODALITIES),
    output:
        json="results/linearity_results.json",
        cross="results/cross_category_variance.json",
        figure=report(
            "results/figures/linearity.png",
            caption="../report/linearity.rst",
            category="Phase 0",
            subcategory="0-b consistency",
            labels={"figure": "within-category direction consistency"},
        ),
    log:
        "logs/linearity.log",
    benchmark:
        "results/benchmarks/linearity.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=lambda wc, input: job_mem_mb("linearity", input),
        runtime=lambda wc, input: job_runtime("linearity", input),
    params:
        settings=to_params(linearity_settings(config)),
    script:
        "../scripts/linearity.py"
