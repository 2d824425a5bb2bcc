# Phase 1: text-anchor discovery matrix (image effects x audio effects) with bootstrap
# intervals, permutation p-values and the chosen pairs (docs/methods.md section 5).

PHASE1_RESULTS = [
    "results/discovery_matrix.npy",
    "results/discovery_labels.json",
    "results/discovery.tsv",
    "results/discovery_heatmap.png",
    "results/discovery_components.png",
    "results/discovery_per_intensity.png",
]

PHASE1_OPTIONS = {
    k: config["phase1"][k]
    for k in (
        "text_bridge",
        "center_anchors",
        "clip_negative",
        "n_permutations",
        "n_bootstrap",
        "ci_level",
        "correction",
        "alpha",
        "seed",
    )
}


# Only what Phase 1 reads goes into params: a changed synonym list reruns phase1 (and what
# depends on it), a changed media batch size does not.
PHASE1_MODELS = {
    m: {k: v for k, v in model_params(m).items() if k != "batch_size"}
    for m in MODALITIES
}
PHASE1_SYNONYMS = {
    m: {e: list(config["phase1"]["synonyms"][m][e]) for e in EFFECTS[m]}
    for m in MODALITIES
}


rule phase1:
    """Phase 1: prototypes vs centred synonym anchors, sim1 x sim2 x sim3, intervals, p-values."""
    input:
        image="results/image_deltas.npz",
        audio="results/audio_deltas.npz",
        health=expand("results/health/{modality}.json", modality=MODALITIES),
    output:
        matrix="results/discovery_matrix.npy",
        labels="results/discovery_labels.json",
        components="results/discovery_components.npz",
        table="results/discovery.tsv",
        heatmap=report(
            "results/discovery_heatmap.png",
            caption="../report/phase1.rst",
            category="Phase 1",
        ),
        panels=report(
            "results/discovery_components.png",
            caption="../report/phase1.rst",
            category="Phase 1",
        ),
        intensity=report(
            "results/discovery_per_intensity.png",
            caption="../report/phase1.rst",
            category="Phase 1",
        ),
    log:
        "logs/phase1.log",
    benchmark:
        "results/benchmarks/phase1.tsv"
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=30,
    params:
        models=PHASE1_MODELS,
        templates=config["phase1"]["templates"],
        synonyms=PHASE1_SYNONYMS,
        options=PHASE1_OPTIONS,
        allow_unhealthy=config["models"]["health"]["allow_unhealthy"],
    script:
        "../scripts/phase1.py"
