# extract.group: variant (the default): one model job per (modality, effect, intensity), the
# most jobs in parallel (clusters). Included by the Snakefile; docs/methods.md §2.2.


rule embed_variant:
    """Render one effect at one intensity on every file and embed the result."""
    input:
        manifest="results/manifest/{modality}.tsv",
    output:
        embeddings=f"results/embeddings/{{modality}}/{{effect}}/{{intensity}}{PART}.npz",
    log:
        f"logs/embed/{{modality}}/{{effect}}/{{intensity}}{PART}.log",
    benchmark:
        f"results/benchmarks/embed/{{modality}}/{{effect}}/{{intensity}}{PART}.tsv"
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
        mem_mb=lambda wc, threads: decode_mem_mb(config, wc.modality, 8000, threads),
        runtime=120,
    params:
        settings=lambda wc: to_params(
            embed_settings(config, wc.modality, wc.effect, wc.intensity, shard_of(wc))
        ),
    script:
        "../scripts/embed.py"
