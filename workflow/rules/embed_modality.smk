# extract.group: modality (the workstation profile's choice): the originals and every variant
# of a modality in one model job, the model loaded once. Included by the Snakefile;
# docs/methods.md §2.2.


rule embed_image:
    """The image originals and every image variant in one job, the model loaded once."""
    input:
        manifest="results/manifest/image.tsv",
    output:
        embeddings=modality_group_outputs("image"),
    log:
        f"logs/embed/image{PART}.log",
    benchmark:
        f"results/benchmarks/embed/image{PART}.tsv"
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
        mem_mb=lambda wc, threads: decode_mem_mb(config, "image", 8000, threads),
        runtime=120 * len(modality_group("image")),
    params:
        settings=modality_group_params("image"),
    script:
        "../scripts/embed_group.py"


rule embed_audio:
    """The audio originals and every audio variant in one job, the model loaded once."""
    input:
        manifest="results/manifest/audio.tsv",
    output:
        embeddings=modality_group_outputs("audio"),
    log:
        f"logs/embed/audio{PART}.log",
    benchmark:
        f"results/benchmarks/embed/audio{PART}.tsv"
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120 * len(modality_group("audio")),
    params:
        settings=modality_group_params("audio"),
    script:
        "../scripts/embed_group.py"
