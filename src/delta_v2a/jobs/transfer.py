"""Delta transfer jobs: the ``transfer`` entry of ``decoder_model.pt`` built from the study's
artifacts, and the ``transfer_examples`` rule's demo renderings (docs/methods.md §7).

``transfer_payload_from_results`` is called by the Phase 3 training job, which stores the dict
under ``"transfer"`` in the model file; it reads the artifacts by key and names the file and key
when one is missing. Phase 1's significance fields (``p_adjusted``, ``chosen_pairs``, ``alpha``)
are read where present; a study without them gives pairs whose significance is ``None``
(untested), which ``delta-v2a transfer`` refuses unless ``--force``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from delta_v2a import transfer as tr
from delta_v2a.jobs.common import Paths, PipelineError, log
from delta_v2a.jobs.tables import phase1_pairs
from delta_v2a.phase1 import prototypes
from delta_v2a.settings import ExamplesSettings
from delta_v2a.storage import NAMES, DeltaStore, read_json, write_json

# --------------------------------------------------------------------------- payload


def _level_norms(sensitivity: Mapping[str, Any], where: str, store: DeltaStore) -> dict:
    """Phase 0's mean image ‖Δe‖ per effect, one per intensity in the store's order."""
    rows = {
        (r["effect_type"], r["intensity"]): r
        for r in sensitivity.get("results", [])
        if r.get("modality") == "image"
    }
    out = {}
    for effect in map(str, store.effects):
        norms = []
        for intensity in map(str, store.intensities):
            row = rows.get((effect, intensity))
            if row is None or row.get("mean") is None:
                raise PipelineError(
                    f"{where}: results has no finite image mean for {effect}/{intensity}"
                )
            norms.append(float(row["mean"]))
        out[effect] = tr.StrengthCurve.from_levels(norms)
    return out


def _cell(table: Any, labels: Mapping[str, Any], image: str, audio: str) -> float | None:
    """One cell of a per-pair table stored as a matrix, a nested dict or a list of records."""
    if table is None:
        return None
    if isinstance(table, Mapping):
        value = table.get(image, {}).get(audio) if isinstance(table.get(image), Mapping) else None
    elif table and isinstance(table[0], Mapping):
        value = next(
            (
                r.get("p_adjusted", r.get("p_value"))
                for r in table
                if r.get("image_effect") == image and r.get("audio_effect") == audio
            ),
            None,
        )
    else:
        i = list(labels["image_effects"]).index(image)
        j = list(labels["audio_effects"]).index(audio)
        value = table[i][j]
    return None if value is None or not np.isfinite(value) else float(value)


def _significance(labels: Mapping[str, Any], image: str, audio: str) -> dict[str, Any]:
    """The pair's p-values and Phase 1's decision, copied (Phase 1 alone decides; None when
    its labels carry no decision)."""
    p_adj = _cell(labels.get("p_adjusted"), labels, image, audio)
    p_raw = _cell(labels.get("p"), labels, image, audio)  # Phase 1: "p" matrix, uncorrected
    chosen = labels.get("chosen_pairs")
    significant = None if chosen is None else (image, audio) in phase1_pairs(labels)
    return {
        "p_value": p_raw,
        "p_adjusted": p_adj,
        "alpha": labels.get("alpha"),
        "significant": significant,
    }


def _normalised(store: DeltaStore) -> bool:
    """Whether the study's embeddings were L2-normalised (their originals have unit length)."""
    norms = np.linalg.norm(store.original.astype(np.float64), axis=1)
    return bool(norms.size and np.all(np.abs(norms - 1.0) < 1e-3))


def _audio_top(audio_store: DeltaStore | None, effect: str, pair: Mapping, where: str) -> float:
    """Median audio ‖Δe‖ of ``effect`` at its strongest intensity (κ's target)."""
    if "audio_norm_strongest" in pair:
        return float(pair["audio_norm_strongest"])
    if audio_store is None:
        raise PipelineError(
            f"{where}: pair {pair['image_effect']} -> {effect} carries no audio_norm_strongest "
            "and no audio_store was given to compute κ from"
        )
    e = list(audio_store.effects).index(effect)
    rows = (audio_store.effect_code == e) & (
        audio_store.intensity_code == len(audio_store.intensities) - 1
    )
    norms = np.linalg.norm(audio_store.delta[rows].astype(np.float64), axis=1)
    norms = norms[np.isfinite(norms)]
    if norms.size == 0:
        raise PipelineError(f"audio store: no finite delta of {effect} at its strongest level")
    return float(np.median(norms))


def _pairs(
    pairs_doc: Mapping[str, Any],
    pairs_json: str,
    image_store: str,
    curves: Mapping[str, Any],
    labels: Mapping[str, Any],
    audio: DeltaStore | None,
) -> list[dict[str, Any]]:
    """Phase 3's chosen pairs with their significance and κ (from the pair when Phase 3
    matched strengths, else from the image curve's top and the audio's strongest norm)."""
    pairs = []
    for row in pairs_doc.get("chosen", []):
        i, j = row["image_effect"], row["audio_effect"]
        if i not in curves:
            raise PipelineError(f"{pairs_json}: pair {i} -> {j}: {i} is not in {image_store}")
        top = _audio_top(audio, j, row, pairs_json)
        pairs.append(
            {
                "image_effect": i,
                "audio_effect": j,
                "score": row.get("score"),
                **_significance(labels, i, j),
                "audio_norm_strongest": top,
                "kappa": float(row["kappa"]) if "kappa" in row else tr.kappa(curves[i].at(1), top),
            }
        )
    return pairs


def _calibration_shares(
    store: DeltaStore, units: np.ndarray, max_calibration: int, seed: int
) -> np.ndarray:
    """Explained shares of (a seeded subset of at most ``max_calibration``) known edits."""
    rows = np.arange(len(store))
    if rows.size > max_calibration:
        rng = np.random.default_rng([seed, 17])
        rows = np.sort(rng.choice(rows, max_calibration, replace=False))
    return tr.explained_shares(store.delta[rows], units)


def _image_model(store: DeltaStore, image_store: str) -> dict[str, Any]:
    """How ``transfer`` must embed a new photo pair: the model and decoding of the store."""
    model = dict(store.meta.get("model", {}))
    image_model = {
        "name_or_path": model.get("name_or_path"),
        "revision": model.get("revision"),
        "dtype": model.get("dtype", "fp32"),
        "normalize": _normalised(store),
        "image_size": store.meta.get("decoding", {}).get("image_size"),
        "dim": int(store.delta.shape[1]),
        "tiny": bool(model.get("tiny", False)),
    }
    if image_model["name_or_path"] is None:
        raise PipelineError(f"{image_store}: meta.model.name_or_path is missing")
    return image_model


def transfer_payload_from_results(
    image_store: str,
    sensitivity_json: str,
    labels_json: str,
    pairs_json: str,
    *,
    audio_store: str | None = None,
    quantile: float = 0.05,
    min_component: float = 0.1,
    u_grid: int = 11,
    max_calibration: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """The ``transfer`` dict for ``decoder_model.pt`` (plain values; weights_only-loadable)."""
    store = DeltaStore.load(image_store)
    effects = [str(e) for e in store.effects]
    pooled = prototypes(
        store.delta, store.effect_code, store.intensity_code, effects, list(store.intensities)
    ).pooled
    units = tr.unit_prototypes(pooled, effects)
    curves = _level_norms(read_json(sensitivity_json), sensitivity_json, store)
    labels = read_json(labels_json)
    pairs_doc = read_json(pairs_json)
    audio = DeltaStore.load(audio_store) if audio_store else None
    pairs = _pairs(pairs_doc, pairs_json, image_store, curves, labels, audio)
    # The audio chain in Phase 3's order when it trained, else the audio store's order.
    chain = pairs_doc.get("paramspace", {}).get("effects") or (
        [str(e) for e in audio.effects] if audio is not None else [p["audio_effect"] for p in pairs]
    )
    payload = tr.build_payload(
        effects=effects,
        units=units,
        curves=curves,
        pairs=pairs,
        image_model=_image_model(store, image_store),
        calibration=_calibration_shares(store, units, max_calibration, seed),
        null=tr.null_share(units, seed=seed),
        quantile=quantile,
        min_component=min_component,
        alpha=labels.get("alpha"),
        chain=chain,
        u_grid=u_grid,
    )
    th = payload["thresholds"]
    log.info(
        "transfer: %d image prototypes, %d pair(s), explained-share threshold %.3f (set by %s; "
        "known edits' median %.3f, random directions' 95th percentile %.3f)",
        len(effects),
        len(pairs),
        th["explained_share_min"],
        th["calibration"]["set_by"],
        th["calibration"]["median_known_edit_share"],
        th["calibration"]["null_share_q95"],
    )
    return payload


# --------------------------------------------------------------------------- demo examples


def _test_songs(samples: str, pairs: str, n: int) -> tuple[list[str], str]:
    """Songs of the held-out test split (Phase 3's ``split`` column); validation files where
    the study has no test split yet. Returns (paths, the split used)."""
    import pandas as pd

    frame = pd.read_csv(samples, sep="\t", keep_default_na=False, encoding_errors=NAMES)
    split = frame["split"] if "split" in frame.columns else pd.Series([], dtype=str)
    for name in ("test", "val"):
        paths = sorted(set(frame.loc[split == name, "path"])) if len(split) else []
        if paths:
            return paths[:n], name
    doc = read_json(pairs).get("split", {})
    for name in ("test_files", "val_files"):
        if doc.get(name):
            return sorted(doc[name])[:n], name.removesuffix("_files")
    raise PipelineError(f"{samples}: no test or validation file to take a demo song from")


def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray((255 * np.clip(image, 0, 1)).round().astype(np.uint8)).save(path)


def _one_example(setup: Any, out: Path, k: int, photos: tuple[str, str], song: str) -> dict:
    """Both routes on one (photo pair, song); a refusal is recorded, then rendered --force."""
    from delta_v2a.transfer.usecase import Refused, transfer

    record: dict[str, Any] = {"before": photos[0], "after": photos[1], "song": song}
    for route, exact in (("decoder", False), ("exact", True)):
        wav = out / f"example{k}_{route}.wav"
        kw = {"audio": song, "out": str(wav), "before": photos[0], "after": photos[1]}
        try:
            result, refused = transfer(setup, exact=exact, **kw), None
        except Refused as err:
            refused = str(err)
            log.warning("example %d (%s): refused: %s; rendering with --force", k, route, err)
            try:
                result = transfer(setup, exact=exact, force=True, **kw)
            except Refused as still:  # nothing to render even when forced: a result too
                log.warning("example %d (%s): refused even with --force: %s", k, route, still)
                record[route] = {"refused": f"{refused}; even with --force", "wav": None}
                continue
        record[route] = {"refused": refused, "wav": wav.name, **result}
    return record


def run_examples(*, inputs: Paths, outputs: Paths, settings: ExamplesSettings) -> None:
    """A demo photo edited by the workflow's own effect (the image effect of the decoder's
    first pair, else the first configured one) at each of its strongest levels, transferred
    onto held-out songs by both routes, with an HTML page of audio players."""
    model, samples, pairs = inputs.model, inputs.samples, inputs.pairs
    edit_levels, n_examples = settings.edit_levels, settings.n_examples
    from delta_v2a.effects import apply_image_effect
    from delta_v2a.extract import read_manifest
    from delta_v2a.media import load_image
    from delta_v2a.phase3.artifact import load_whole
    from delta_v2a.transfer.usecase import format_report, load_setup

    out = Path(outputs.folder)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    doc = torch.load(model, map_location="cpu", weights_only=True)
    if not isinstance(doc, dict) or doc.get("status") != "trained" or "transfer" not in doc:
        why = (
            doc.get("message")
            if isinstance(doc, dict) and doc.get("message")
            else ("the model file holds no trained decoder with a 'transfer' entry")
        )
        write_json(out / "examples.json", {"status": "unavailable", "message": why})
        (out / "README.md").write_text(f"No transfer examples: {why}\n", encoding="utf-8")
        (out / "index.html").write_text(f"<p>No transfer examples: {why}</p>\n")
        log.warning("transfer examples: none (%s)", why)
        return
    setup = load_setup(model, settings.device)
    songs, split = _test_songs(samples, pairs, n_examples)
    photo = read_manifest(inputs.image_manifest)[0].path
    image = load_image(photo, setup.clip.input_size)
    _write_png(out / "before.png", image)
    paired = [p["image_effect"] for p in doc.get("pairs", []) if p["image_effect"] in edit_levels]
    effect = paired[0] if paired else next(iter(edit_levels))
    levels = list(edit_levels[effect])[-n_examples:]
    records = []
    start = time.perf_counter()
    for k, (level, song) in enumerate(zip(levels, songs * n_examples, strict=False)):
        params = dict(edit_levels[effect][level])
        _write_png(out / f"after{k}.png", apply_image_effect(effect, image, params))
        photos = (str(out / "before.png"), str(out / f"after{k}.png"))
        sf_write(
            out / f"example{k}_original.wav",
            load_whole(song, setup.decoder.space.sample_rate),
            setup.decoder.space.sample_rate,
        )
        rec = _one_example(setup, out, k, photos, song)
        rec |= {"edit_effect": effect, "edit_level": level, "edit_params": params, "split": split}
        rec["report"] = {
            r: format_report(rec[r], setup.decoder.space) if rec[r]["wav"] else [rec[r]["refused"]]
            for r in ("decoder", "exact")
        }
        records.append(rec)
    doc = {
        "status": "ok",
        "not_science": setup.not_science,
        "note": setup.note,
        "photo": photo,
        "split": split,
        "seconds": time.perf_counter() - start,
        "examples": records,
    }
    write_json(out / "examples.json", doc)
    _write_pages(out, doc)
    log.info("transfer examples: %d written to %s (%.1f s)", len(records), out, doc["seconds"])


def sf_write(path: Path, audio: np.ndarray, sr: int) -> None:
    import soundfile as sf

    sf.write(path, audio, sr, subtype="FLOAT", format="WAV")


def _write_pages(out: Path, doc: Mapping[str, Any]) -> None:
    """index.html (audio players, for the report) and README.md with the same account."""
    import html

    note = doc["note"]
    md = ["# Delta transfer examples", "", note, ""]
    page = ["<html><body><h2>Delta transfer examples</h2>", f"<p><b>{note}</b></p>"]
    for k, rec in enumerate(doc["examples"]):
        title = (
            f"Example {k}: {Path(rec['song']).name} ({rec['split']} split), photo edited by "
            f"{rec['edit_effect']} at {rec['edit_level']} {rec['edit_params']}"
        )
        md += [f"## {title}", ""]
        page += [
            f"<h3>{html.escape(title)}</h3>",
            '<img src="before.png" width="160">',
            f'<img src="after{k}.png" width="160">',
            f'<p>original <audio controls src="example{k}_original.wav"></audio></p>',
        ]
        for route in ("decoder", "exact"):
            r = rec[route]
            head = f"{route} route" + (
                f" (refused: {r['refused']}; forced)" if r["refused"] else ""
            )
            md += [f"### {head}", "", "```", *rec["report"][route], "```", ""]
            player = f' <audio controls src="{r["wav"]}"></audio>' if r["wav"] else ""
            page += [
                f"<p>{html.escape(head)}{player}</p>",
                "<pre>" + html.escape("\n".join(rec["report"][route])) + "</pre>",
            ]
    (out / "README.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    (out / "index.html").write_text("\n".join([*page, "</body></html>"]) + "\n", encoding="utf-8")
