"""The ``transfer_examples`` job: the demo's photo edits transferred onto held-out songs by both
routes (docs/methods.md §7). The payload the Phase 3 training job stores in the model file is
built by delta_v2a.transfer.payload; the pages by delta_v2a.transfer.examples."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from delta_v2a.artifacts.pairs import Pairs
from delta_v2a.artifacts.transfer import TransferExamples
from delta_v2a.jobs.common import Paths, PipelineError, log
from delta_v2a.settings import ExamplesSettings
from delta_v2a.storage import NAMES

if TYPE_CHECKING:
    from delta_v2a.phase3.artifact import DecoderState

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
    data = Pairs.read(pairs).data
    for name in ("test", "val"):
        files = getattr(data.split, f"{name}_files") if data is not None else []
        if files:
            return sorted(files)[:n], name
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


def _unavailable(out: Path, state: DecoderState) -> str | None:
    """Why the model file holds nothing to transfer with (written as the examples' pages), or
    None when it holds a trained decoder with a ``transfer`` entry."""
    if state.trained and state.has_transfer:
        return None
    why = state.message or "the model file holds no trained decoder with a 'transfer' entry"
    TransferExamples.unavailable(why).write(out / "examples.json")
    (out / "README.md").write_text(f"No transfer examples: {why}\n", encoding="utf-8")
    (out / "index.html").write_text(f"<p>No transfer examples: {why}</p>\n")
    log.warning("transfer examples: none (%s)", why)
    return why


def _examples(
    setup: Any, out: Path, image: np.ndarray, songs: Sequence[str], edit: Mapping, n: int
) -> list[dict]:
    """One record per (edit level, song): the edited photo, the song and both routes
    (``edit``: the image effect, its levels and the songs' split)."""
    from delta_v2a.effects import apply_image_effect
    from delta_v2a.phase3.artifact import load_whole
    from delta_v2a.transfer.usecase import format_report

    effect, levels = edit["effect"], edit["levels"]
    sr = setup.decoder.space.sample_rate
    records = []
    for k, (level, song) in enumerate(zip(list(levels)[-n:], list(songs) * n, strict=False)):
        params = dict(levels[level])
        _write_png(out / f"after{k}.png", apply_image_effect(effect, image, params))
        photos = (str(out / "before.png"), str(out / f"after{k}.png"))
        sf_write(out / f"example{k}_original.wav", load_whole(song, sr), sr)
        rec = _one_example(setup, out, k, photos, song)
        rec |= {"edit_effect": effect, "edit_level": level, "edit_params": params}
        rec["split"] = edit["split"]
        rec["report"] = {
            r: format_report(rec[r], setup.decoder.space) if rec[r]["wav"] else [rec[r]["refused"]]
            for r in ("decoder", "exact")
        }
        records.append(rec)
    return records


def run_examples(*, inputs: Paths, outputs: Paths, settings: ExamplesSettings) -> None:
    """A demo photo edited by the workflow's own effect (the image effect of the decoder's
    first pair, else the first configured one) at each of its strongest levels, transferred
    onto held-out songs by both routes, with an HTML page of audio players."""
    from delta_v2a.extract import read_manifest
    from delta_v2a.media import load_image
    from delta_v2a.phase3.artifact import decoder_state
    from delta_v2a.transfer.examples import example_pages
    from delta_v2a.transfer.usecase import load_setup

    out = Path(outputs.folder)
    out.mkdir(parents=True, exist_ok=True)
    if _unavailable(out, decoder_state(inputs.model)):
        return
    setup = load_setup(inputs.model, settings.device)
    songs, split = _test_songs(inputs.samples, inputs.pairs, settings.n_examples)
    photo = read_manifest(inputs.image_manifest)[0].path
    image = load_image(photo, setup.clip.input_size)
    _write_png(out / "before.png", image)
    levels = settings.edit_levels
    paired = [p["image_effect"] for p in setup.decoder.pairs if p["image_effect"] in levels]
    effect = paired[0] if paired else next(iter(levels))
    start = time.perf_counter()
    edit = {"effect": effect, "levels": levels[effect], "split": split}
    records = _examples(setup, out, image, songs, edit, settings.n_examples)
    doc = TransferExamples(status="ok", not_science=setup.not_science, note=setup.note,
                           photo=photo, split=split, seconds=time.perf_counter() - start,
                           examples=records)  # fmt: skip
    doc.write(out / "examples.json")
    readme, index = example_pages(doc)
    (out / "README.md").write_text(readme, encoding="utf-8")
    (out / "index.html").write_text(index, encoding="utf-8")
    log.info("transfer examples: %d written to %s (%.1f s)", len(records), out, doc.seconds)


def sf_write(path: Path, audio: np.ndarray, sr: int) -> None:
    import soundfile as sf

    sf.write(path, audio, sr, subtype="FLOAT", format="WAV")
