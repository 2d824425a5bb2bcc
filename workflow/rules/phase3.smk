# Phase 3: the decoder from image-effect descriptions to audio DSP parameters.


rule phase3_windows:
    """CLAP embeddings of each file's window sequence (the centred window comes from
    extraction's originals); each file embedded once, cached by content."""
    input:
        manifest="results/manifest/audio.tsv",
        original="results/embeddings/audio/original.npz",
    output:
        windows="results/phase3/audio_windows.npz",
    log:
        "logs/phase3/windows.log",
    benchmark:
        "results/benchmarks/phase3/windows.tsv"
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    params:
        settings=to_params(windows_settings(config)),
    script:
        "../scripts/phase3_windows.py"


rule phase3_dataset:
    """Pairs from the discovery matrix (significant and above the threshold), the split by
    file (train / val / test), the sample list and the CLAP text embedding of each distinct
    description (held-out paraphrase templates included)."""
    input:
        matrix="results/discovery_matrix.npy",
        labels="results/discovery_labels.json",
        manifest="results/manifest/audio.tsv",
        split="results/split.json",
        health=expand("results/health/{modality}.json", modality=MODALITIES),
        enough_audio=data_size_gate("phase3"),
    output:
        pairs="results/phase3/pairs.json",
        samples="results/phase3/samples.tsv",
        texts="results/phase3/text_embeddings.npz",
    log:
        "logs/phase3/dataset.log",
    benchmark:
        "results/benchmarks/phase3/dataset.tsv"
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=30,
    params:
        settings=to_params(dataset_settings(config)),
    script:
        "../scripts/phase3_dataset.py"


rule phase3_strength:
    """Each clip's strength curve g_f(u) on the u grid (every clip x u rendered and
    CLAP-embedded once, cached by content), the matched targets u* and how much the audio
    can matter, before any training."""
    input:
        manifest="results/manifest/audio.tsv",
        pairs="results/phase3/pairs.json",
        samples="results/phase3/samples.tsv",
        sensitivity="results/sensitivity_results.json",
    output:
        curves="results/phase3/strength_curves.npz",
        targets="results/phase3/targets.tsv",
        dependence="results/phase3/audio_dependence.json",
    log:
        "logs/phase3/strength.log",
    benchmark:
        "results/benchmarks/phase3/strength.tsv"
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    params:
        settings=to_params(strength_settings(config)),
    script:
        "../scripts/phase3_strength.py"


rule phase3:
    """Phase 3: train the cross-attention decoder, its concat ablation and a text-only MLP
    on the train files, choose the epoch on the validation files, report every baseline on
    the test files once (bootstrap intervals over files), write the model and its log.
    """
    input:
        windows="results/phase3/audio_windows.npz",
        pairs="results/phase3/pairs.json",
        samples="results/phase3/samples.tsv",
        texts="results/phase3/text_embeddings.npz",
        targets="results/phase3/targets.tsv",
        curves="results/phase3/strength_curves.npz",
        dependence="results/phase3/audio_dependence.json",
        # What `delta-v2a transfer` needs in the model file (docs/methods.md §7).
        image_store="results/image_deltas.npz",
        audio_store="results/audio_deltas.npz",
        sensitivity="results/sensitivity_results.json",
        labels="results/discovery_labels.json",
    output:
        model="results/decoder_model.pt",
        log="results/training_log.json",
        predictions=directory("results/parameter_predictions"),
        training=report(
            "results/figures/phase3_training.png",
            caption="../report/phase3_training.rst",
            category="Phase 3",
        ),
        scatter=report(
            "results/figures/phase3_predictions.png",
            caption="../report/phase3_predictions.rst",
            category="Phase 3",
        ),
    log:
        "logs/phase3/train.log",
    benchmark:
        "results/benchmarks/phase3/train.tsv"
    conda:
        ENV
    # The decoder is small: on a CPU one thread trained it 10x faster than two on a busy
    # 2-core machine (threads spin-waiting on each other); on a GPU threads do not matter.
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    params:
        settings=to_params(
            phase3_settings(config, in_this_run("results/phase3/checkpoints"))
        ),
    script:
        "../scripts/phase3_train.py"
