# Delta transfer: demo examples of `delta-v2a transfer` (docs/methods.md §7).


rule transfer_examples:
    """A demo photo edited by the workflow's own effect, transferred onto held-out songs by
    the decoder and the exact route; audio players and the printed reports in one page.
    """
    input:
        model="results/decoder_model.pt",
        image_manifest="results/manifest/image.tsv",
        samples="results/phase3/samples.tsv",
        pairs="results/phase3/pairs.json",
    output:
        # A plain directory: Snakemake's single-file HTML report cannot embed a directory
        # entry (only --report report.zip can); results/transfer/index.html has the players.
        folder=directory("results/transfer"),
    log:
        "logs/transfer/examples.log",
    benchmark:
        "results/benchmarks/transfer/examples.tsv"
    conda:
        ENV
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=30,
    params:
        settings=to_params(examples_settings(config)),
    script:
        "../scripts/transfer_examples.py"
