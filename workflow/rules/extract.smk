# Extraction: vet files -> embed originals and variants (the model rules in embed_*.smk, cut
# into jobs by extract.group and extract.shard_files) -> gather the deltas. Model jobs ask for one `gpu` each: a profile's `resources: gpu=N` is the
# number of GPU slots (model jobs at once); each job leases its device (delta_v2a.devices).


rule manifest:
    """Decode every file of one data state (named by its inventory's digest) and stop (or skip)
    on bad ones before any model loads."""
    input:
        # ancient: the digest in the output's name already says which content it vetted
        inventory=lambda wc: ancient(INVENTORY[wc.modality]),
    output:
        # With extract.shard_files each shard vets its part of the sorted files, into
        # ".part<k>" files that manifest_current joins.
        manifest=f"results/manifest/vetted/{{modality}}.{{digest}}{VET_PART}.tsv",
        skipped=f"results/manifest/vetted/{{modality}}_skipped.{{digest}}{VET_PART}.tsv",
    log:
        f"logs/manifest/{{modality}}/{{digest}}{VET_PART}.log",
    benchmark:
        f"results/benchmarks/manifest/{{modality}}/{{digest}}{VET_PART}.tsv"
    wildcard_constraints:
        digest="[0-9a-f]{16}",
    conda:
        ENV
    threads: 2
    resources:
        # decodes at once (threads) x the decode budget, plus ~1 KB per file of the walk
        mem_mb=lambda wc, threads: decode_mem_mb(config, wc.modality, 2000, threads)
        + len(MEDIA[wc.modality]) // 1000,
        runtime=lambda wc, threads: vet_runtime_min(
            len(MEDIA[wc.modality]), EXTRACT.shard_files, threads
        ),
    params:
        # A new package version may change formats: everything downstream reruns (and the
        # embedding cache keeps that cheap unless preprocessing itself changed).
        settings=lambda wc: to_params(
            manifest_settings(config, wc.modality, VERSION, shard_of(wc))
        ),
    script:
        "../scripts/manifest.py"


rule manifest_current:
    """The vetted manifest of the data as it is now: what every later job reads. A failed
    vetting of a new data state never reaches here, so the last good manifest stays."""
    input:
        # one vetted file, or with extract.shard_files one per shard (joined here, in order)
        manifest=lambda wc: vetted_parts(wc.modality, ""),
        skipped=lambda wc: vetted_parts(wc.modality, "_skipped"),
    output:
        manifest="results/manifest/{modality}.tsv",
        skipped="results/manifest/{modality}_skipped.tsv",
    log:
        "logs/manifest/{modality}/current.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/manifest_current.py"


rule skipped_files:
    """One table of every file left out, with the reason (empty unless on_bad_file: skip)."""
    input:
        skipped=expand("results/manifest/{modality}_skipped.tsv", modality=MODALITIES),
    output:
        table="results/skipped_files.tsv",
    log:
        "logs/skipped_files.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/skipped_files.py"


rule deltas:
    """Join variants with originals into the seed's JSON and a compact store for later
    phases."""
    input:
        original="results/embeddings/{modality}/original.npz",
        variants=lambda wc: variant_embeddings(wc.modality),
    output:
        **SEED_JSON_OUTPUT,
        store="results/{modality}_deltas.npz",
        meta="results/{modality}_deltas.meta.json",
    log:
        "logs/deltas/{modality}.log",
    benchmark:
        "results/benchmarks/deltas/{modality}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=lambda wc, input: job_mem_mb("deltas", input, wc.modality),
        runtime=lambda wc, input: job_runtime("deltas", input),
    params:
        settings=lambda wc: to_params(deltas_settings(config, wc.modality)),
    script:
        "../scripts/deltas.py"


rule health:
    """Model health check before any science: mean pairwise cosine of unrelated prompts (and,
    for audio, contrasting clips), and each input alone vs in a batch (the determinism gate);
    written whatever the verdict. Waits for the manifest, so a bad data folder stops the run
    before any model is loaded."""
    input:
        manifest="results/manifest/{modality}.tsv",
    output:
        health="results/health/{modality}.json",
    log:
        "logs/health/{modality}.log",
    benchmark:
        "results/benchmarks/health/{modality}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=30,
    params:
        settings=lambda wc: to_params(health_settings(config, wc.modality)),
    script:
        "../scripts/health.py"
