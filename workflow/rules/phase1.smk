# Phase 1: text-anchor discovery matrix (image effects x audio effects) with bootstrap
# intervals, permutation p-values and the chosen pairs (docs/methods.md section 5).


rule phase1:
    """Phase 1: prototypes vs centred synonym anchors, sim1 x sim2 x sim3, intervals, p-values."""
    input:
        image="results/image_deltas.npz",
        audio="results/audio_deltas.npz",
        split="results/split.json",
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
        mem_mb=lambda wc, input: job_mem_mb("phase1", input),
        runtime=lambda wc, input: job_runtime("phase1", input),
    params:
        # Only what Phase 1 reads: a changed synonym list reruns it, a media batch size not.
        settings=to_params(phase1_settings(config)),
    script:
        "../scripts/phase1.py"
