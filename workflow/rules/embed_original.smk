# The originals in their own job per modality (extract.group: variant or effect; with
# extract.shard_files one per file shard). Included by the Snakefile.


rule embed_original:
    """Embed every original once per modality; effects never re-embed them."""
    input:
        manifest="results/manifest/{modality}.tsv",
    output:
        embeddings=f"results/embeddings/{{modality}}/original{PART}.npz",
    log:
        f"logs/embed/{{modality}}/original{PART}.log",
    benchmark:
        f"results/benchmarks/embed/{{modality}}/original{PART}.tsv"
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
        mem_mb=lambda wc, threads: decode_mem_mb(config, wc.modality, 8000, threads),
        runtime=120,
    params:
        settings=lambda wc: to_params(
            embed_settings(config, wc.modality, None, None, shard_of(wc))
        ),
    script:
        "../scripts/embed.py"
