# extract.group: effect: every intensity of one effect in one model job. Included by the
# Snakefile; docs/methods.md §2.2.


rule embed_effect:
    """Every intensity of one effect in one job, the model loaded once."""
    input:
        manifest="results/manifest/{modality}.tsv",
    output:
        embeddings=[
            f"results/embeddings/{{modality}}/{{effect}}/{i}{PART}.npz"
            for i in INTENSITIES
        ],
    log:
        f"logs/embed/{{modality}}/{{effect}}{PART}.log",
    benchmark:
        f"results/benchmarks/embed/{{modality}}/{{effect}}{PART}.tsv"
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
        mem_mb=lambda wc, threads: decode_mem_mb(config, wc.modality, 8000, threads),
        runtime=120 * len(INTENSITIES),
    params:
        settings=lambda wc: to_params(
            embed_group_settings(
                config,
                wc.modality,
                [(wc.effect, i) for i in INTENSITIES],
                shard_of(wc),
            )
        ),
    script:
        "../scripts/embed_group.py"
