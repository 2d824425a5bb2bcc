# The audio files' train / val / test split, decided once: Phase 1 chooses pairs on train + val,
# Phase 3 trains on train, chooses on val and reports on test (docs/methods.md §6.1).


rule split:
    """Split the audio files by file (seeded, stratified by genre) for Phases 1 and 3."""
    input:
        manifest="results/manifest/audio.tsv",
        enough_audio=data_size_gate("split"),
    output:
        split="results/split.json",
    log:
        "logs/split.log",
    localrule: True
    conda:
        ENV
    resources:
        mem_mb=lambda wc, input: job_mem_mb("split", input),
        runtime=lambda wc, input: job_runtime("split", input),
    params:
        settings=to_params(split_settings(config)),
    script:
        "../scripts/split.py"
