# Phase 0: are the deltas sensitive (0-a), consistent and context-invariant (0-b)?

PHASE0_RESULTS = [
    "results/image_deltas.json",
    "results/audio_deltas.json",
    "results/sensitivity_results.json",
    "results/linearity_results.json",
    "results/cross_category_variance.json",
    "results/skipped_files.tsv",
]


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
        mem_mb=4000,
        runtime=30,
    params:
        min_distance=config["sensitivity"]["min_distance"],
        allow_unhealthy=config["models"]["health"]["allow_unhealthy"],
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
        mem_mb=4000,
        runtime=30,
    params:
        thresholds=config["linearity"],
        allow_unhealthy=config["models"]["health"]["allow_unhealthy"],
    script:
        "../scripts/linearity.py"
