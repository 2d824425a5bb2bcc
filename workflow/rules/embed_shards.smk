# extract.shard_files > 0: the originals' shards joined into the one table Phase 3 reads (the
# deltas job merges the variants' shards itself). Included by the Snakefile.


rule merge_original:
    """The originals' file shards as one table (Phase 3 and the deltas job read it)."""
    input:
        parts=lambda wc: embedding_parts(wc.modality, "original"),
    output:
        embeddings="results/embeddings/{modality}/original.npz",
    log:
        "logs/embed/{modality}/merge_original.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/merge_original.py"
