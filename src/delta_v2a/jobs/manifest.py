"""Vetting jobs (rules/extract.smk: manifest, manifest_current, skipped_files): every file
decoded once before any model loads, the vetted list every later job reads, and the table of
every file left out."""

from __future__ import annotations

import shutil
from pathlib import Path

from delta_v2a.extract import (
    default_decoding,
    read_manifest,
    shard_rows,
    vet,
    write_manifest,
    write_skipped,
)
from delta_v2a.inventory import inventory_digest, read_inventory
from delta_v2a.jobs.common import Paths, PipelineError, log
from delta_v2a.media import MODALITY_EXTENSIONS, FileChangedError, MediaFile, shown_path, walk_root
from delta_v2a.settings import ManifestSettings
from delta_v2a.storage import atomic_path

_CHANGED = "the data changed after the workflow was parsed; run snakemake again"


def run_manifest(
    *, inputs: Paths, outputs: Paths, settings: ManifestSettings, threads: int
) -> None:
    """Vet every file once, decoding what every later phase reads.

    ``settings.lead_s``: the longest lead-in before the centred window any later phase reads
    (Phase 3's window sequence); audio is vetted over ``max(preroll_s, lead_s)`` before the
    window, so NaN samples there are found here, not in a later job.
    """
    modality, root, key = settings.modality, settings.root, settings.key
    preroll_s, lead_s = settings.preroll_s, settings.lead_s
    if not Path(root).is_dir():
        raise PipelineError(f"{key}: data root '{root}' does not exist or is not a folder")
    try:
        walk = walk_root(root, modality)
    except OSError as err:
        raise PipelineError(f"{key}: {err.strerror or err}") from err
    files = walk.files
    expected = _inventory_for(inputs.inventory, outputs.manifest, files)
    if settings.shards:  # this job's part of the sorted files (docs/methods.md §2.2)
        files = [files[i] for i in shard_rows(len(files), settings.shards, settings.shard, 1)]
    try:
        good, hashes, bad = vet(
            files,
            default_decoding(modality, max(preroll_s, lead_s), settings.decode_budget_mib),
            workers=threads,
        )
    except FileChangedError as err:
        raise PipelineError(str(err)) from err
    changed = [f.shown for f, h in zip(good, hashes, strict=True) if expected[f.shown] != h]
    if changed:
        raise PipelineError(f"{changed[0]}: {_CHANGED}")
    for f, reason in bad:
        log.warning("bad %s file %s: %s", modality, f.shown, reason)
    if bad and settings.on_bad_file == "error":
        listing = "\n".join(f"  {f.shown}: {reason}" for f, reason in bad)
        raise PipelineError(
            f"{len(bad)} unusable {modality} file(s) under {key} '{root}' (on_bad_file: error; "
            f"set on_bad_file: skip to leave them out and list them in "
            f"results/skipped_files.tsv):\n{listing}"
        )
    if not settings.shards:
        _log_usable(good, len(bad), settings)
    others = walk.others if settings.shard == 0 else []  # listed once, by the first shard
    write_skipped(outputs.skipped, bad + not_media(others, key, modality))
    write_manifest(outputs.manifest, good, hashes)


def _log_usable(good: list[MediaFile], n_bad: int, settings: ManifestSettings) -> None:
    """The usable files per category in the log; none at all stops the run."""
    modality, root, key = settings.modality, settings.root, settings.key
    if not good:
        raise PipelineError(
            f"{key} '{root}': no usable {modality} files (expected {root}/<category>/**/*"
            f".{{{','.join(e.lstrip('.') for e in MODALITY_EXTENSIONS[modality])}}}; "
            f"{n_bad} bad file(s) skipped)"
        )
    per_cat: dict[str, int] = {}
    for f in good:
        per_cat[f.category] = per_cat.get(f.category, 0) + 1
    log.info(
        "%d usable %s files in %d categories: %s",
        len(good),
        modality,
        len(per_cat),
        dict(sorted(per_cat.items())),
    )


def not_media(others: list[MediaFile], key: str, modality: str) -> list[tuple[MediaFile, str]]:
    """Files under a data root that no decoder reads: one warning line naming them, and rows
    for skipped_files.tsv (never a stop: a notes file beside the photos is not an error)."""
    if not others:
        return []
    names = ", ".join(f.shown for f in others[:10]) + (" ..." if len(others) > 10 else "")
    log.warning(
        "%d file(s) under %s are not %s files the decoders read, left out (listed in "
        "results/skipped_files.tsv): %s",
        len(others),
        key,
        modality,
        names,
    )
    return [(f, _not_media_reason(f.path, modality)) for f in others]


def _not_media_reason(path: str, modality: str) -> str:
    suffix = Path(path).suffix
    what = f"extension '{shown_path(suffix)}'" if suffix else "no extension"
    return f"{what}: not an {modality} format the installed decoders read"


def _inventory_for(inventory: str, vetted: str, files: list) -> dict[str, str]:
    """{path: sha256} of the data state this job vets, checked against the files found now.

    Why: the output is named by the inventory's digest (docs/methods.md §2.1), so what it holds
    must be exactly that state; a file added, removed or rewritten since the parse stops here.
    """
    text = Path(inventory).read_text(encoding="utf-8")
    digest = Path(vetted).name.split(".")[1]
    if inventory_digest(text) != digest:
        raise PipelineError(f"{inventory}: {_CHANGED}")
    expected = read_inventory(inventory)
    if set(expected) != {f.shown for f in files}:
        extra = sorted(set(expected) ^ {f.shown for f in files})
        raise PipelineError(f"{extra[0]}: {_CHANGED}")
    return expected


def run_manifest_current(*, inputs: Paths, outputs: Paths) -> None:
    """Make the vetted manifest of the current data state the one every later job reads (its
    vetting shards joined in order, with extract.shard_files), and drop the vetted manifests
    of earlier states (a return to one vets it again)."""
    manifests, skipped = _listed(inputs.manifest), _listed(inputs.skipped)
    keep = {Path(p).resolve() for p in manifests + skipped}
    if len(manifests) == 1:
        for src, dst in ((manifests[0], outputs.manifest), (skipped[0], outputs.skipped)):
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
    else:
        _join_vetted(manifests, skipped, outputs)
    modality = Path(outputs.manifest).stem
    vetted = Path(manifests[0]).parent
    old = [p for p in vetted.glob(f"{modality}[._]*.tsv") if p.resolve() not in keep]
    for path in old:
        path.unlink(missing_ok=True)
    log.info(
        "%s is %s (%d earlier vetted file(s) removed)", outputs.manifest, manifests[0], len(old)
    )


def _listed(paths: str | list[str]) -> list[str]:
    return [paths] if isinstance(paths, str) else list(paths)


def _join_vetted(manifests: list[str], skipped: list[str], outputs: Paths) -> None:
    """The vetting shards' manifests and skipped lists as one of each (docs/methods.md §2.2)."""
    files = [f for part in manifests for f in read_manifest(part)]
    if not files:
        raise PipelineError(
            f"{manifests[0]}: no usable files in any of the {len(manifests)} vetting shards "
            f"(see {skipped[0]} and the shards beside it)"
        )
    with atomic_path(outputs.skipped) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for k, part in enumerate(skipped):
            with open(part, encoding="utf-8") as fh:
                header = fh.readline()
                out.write(header if k == 0 else "")
                shutil.copyfileobj(fh, out)
    write_manifest(outputs.manifest, files, [f.sha256 for f in files])
    log.info("%d usable files from %d vetting shards", len(files), len(manifests))


def run_skipped(*, inputs: Paths, outputs: Paths) -> None:
    """One table of every file left out, with its reason."""
    import pandas as pd

    output = outputs.table
    frames = [pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False) for p in inputs.skipped]
    table = pd.concat(frames, ignore_index=True)
    with atomic_path(output) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    if len(table):
        log.warning("%d file(s) skipped; see %s", len(table), output)
