"""`decoder_model.pt`: save, load (weights_only=True) and apply the trained decoder."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from delta_v2a.media import load_audio
from delta_v2a.phase3.calibrate import gate_decision, named_levels, nearest_reference
from delta_v2a.phase3.model import DecoderNet, model_with_state, predict
from delta_v2a.phase3.paramspace import ParamSpace
from delta_v2a.phase3.windows import WindowSpec, embed_windows
from delta_v2a.storage import atomic_path
from delta_v2a.transfer.types import TransferPayload

log = logging.getLogger(__name__)

FORMAT = "delta_v2a.decoder"
#: 2: the verdict is the exact sign test (P(win) > 1/2), the text-only gate chosen on
#: validation; the file says which delta-v2a made it (``made_by``)
FORMAT_VERSION = 2


# --------------------------------------------------------------------------- decoder_model.pt


def save_decoder(path: str | Path, payload: Mapping[str, Any]) -> None:
    """Write ``decoder_model.pt`` atomically after checking it holds only plain values."""
    from delta_v2a import __version__

    made_by = f"delta-v2a {__version__}"
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "made_by": made_by, **payload}
    _check_plain(doc, "decoder_model")
    with atomic_path(path, ".pt") as tmp:
        torch.save(doc, tmp)


def _check_plain(value: Any, where: str) -> None:
    if (
        isinstance(value, torch.Tensor)
        or value is None
        or isinstance(value, (bool, int, float, str))
    ):
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: key {k!r} is not a string")
            _check_plain(v, f"{where}.{k}")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(f"{where}: {type(value).__name__} is not a plain value (weights_only load)")


@dataclass
class Decoder:
    """A loaded ``decoder_model.pt``: the network and, by attribute, what the file says of it
    (written by :func:`delta_v2a.phase3.records.decoder_payload`)."""

    model: DecoderNet
    space: ParamSpace
    windows: WindowSpec
    preroll: int
    audio_model: dict[str, Any]  # the CLAP it was trained with (see resolve_model)
    level_words: list[str]
    templates: dict[str, list[str]]  # image effect -> the templates it was trained on
    pairs: list[dict[str, Any]]  # the (image effect, audio effect) pairs, with their scores
    gate: dict[str, Any]  # what apply accepts (phase3.calibrate.apply_calibration)
    target: str = ""
    heldout_templates: dict[str, list[str]] = field(default_factory=dict)
    validation_templates: dict[str, list[str]] = field(default_factory=dict)
    test_figures: dict[str, Any] = field(default_factory=dict)
    verdict: dict[str, Any] = field(default_factory=dict)
    best_epoch: int | None = None
    format_version: int = FORMAT_VERSION
    not_science: bool = False
    note: str = ""
    #: what ``delta-v2a transfer`` reads (prototypes, strength curves, pairs); None if absent
    transfer: TransferPayload | None = None

    def predict(self, text: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """(N, P) predictions clipped to [0, 1]."""
        device = next(self.model.parameters()).device
        return np.clip(predict(self.model, text, windows, device), 0.0, 1.0)


def _decoder_of(doc: Mapping[str, Any], model: DecoderNet) -> Decoder:
    """The typed view of a checked model file's contents."""
    return Decoder(
        model=model,
        space=ParamSpace.from_dict(doc["paramspace"]),
        windows=WindowSpec(**doc["windows"]),
        preroll=int(doc["preroll"]),
        audio_model=dict(doc["audio_model"]),
        level_words=list(doc["level_words"]),
        templates=dict(doc["templates"]),
        pairs=list(doc["pairs"]),
        gate=dict(doc["apply"]),
        target=str(doc.get("target", "")),
        heldout_templates=dict(doc.get("heldout_templates", {})),
        validation_templates=dict(doc.get("validation_templates", {})),
        test_figures=dict(doc.get("test_figures", {})),
        verdict=dict(doc.get("verdict", {})),
        best_epoch=doc.get("best_epoch"),
        format_version=int(doc["format_version"]),
        not_science=bool(doc.get("not_science", False)),
        note=str(doc.get("note", "")),
        transfer=TransferPayload.from_dict(doc["transfer"]) if "transfer" in doc else None,
    )


@dataclass(frozen=True)
class DecoderState:
    """What a model file holds, read without rebuilding the network: whether a decoder was
    trained (else ``message`` says why not) and whether it carries a ``transfer`` entry."""

    trained: bool
    has_transfer: bool
    message: str


def decoder_state(path: str | Path) -> DecoderState:
    """:class:`DecoderState` of ``decoder_model.pt`` (``weights_only=True``), for jobs that
    write something else where no decoder was trained (transfer_examples)."""
    doc = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(doc, dict):
        return DecoderState(trained=False, has_transfer=False, message="")
    return DecoderState(
        trained=doc.get("status") == "trained",
        has_transfer="transfer" in doc,
        message=str(doc.get("message") or ""),
    )


def load_decoder(path: str | Path, device: str | torch.device = "cpu") -> Decoder:
    """Load ``decoder_model.pt`` (``weights_only=True``) and rebuild the network."""
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # truncated zip, not a torch file, pickled classes
        raise ValueError(
            f"{path}: cannot read the decoder ({type(err).__name__}: {str(err)[:200]}); it is "
            "damaged or not a decoder_model.pt: rerun phase3 to write it again"
        ) from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        fmt = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{path}: not a Delta V2A decoder (format {fmt!r})")
    if doc.get("format_version") != FORMAT_VERSION:
        from delta_v2a import __version__

        made_by = doc.get("made_by", "a delta-v2a before 0.1.0's format 2")
        raise ValueError(
            f"{path}: decoder format {doc.get('format_version')} made by {made_by}; this "
            f"delta-v2a {__version__} reads format {FORMAT_VERSION}: rerun phase3, or use the "
            "version that made it"
        )
    if doc.get("status") != "trained":
        raise ValueError(f"{path}: holds no trained decoder ({doc.get('message', doc['status'])})")
    try:
        return _decoder_of(doc, model_with_state(doc["arch"], doc["state_dict"], device))
    except KeyError as err:
        raise ValueError(
            f"{path}: the decoder lacks {err}; rerun phase3 to write it again"
        ) from err
    except ValueError as err:  # the transfer entry's reader names what is wrong
        raise ValueError(f"{path}: {err}") from err


# --------------------------------------------------------------------------- use


def load_whole(path: str | Path, sr: int) -> np.ndarray:
    """A whole file as float32 mono at ``sr`` (the same decoder and resampler as extraction)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
        frames, rate = int(info.frames), int(info.samplerate)
    except Exception:  # exotic encodings: let librosa tell the duration
        import librosa

        rate = sr
        frames = int(round(librosa.get_duration(path=str(path)) * sr))
    n_out = max(1, frames * sr // rate)
    return load_audio(path, sr, n_out, preroll=0)


def predict_description(
    decoder: Decoder,
    embedder: Any,
    audio_path: str | Path,
    description: str,
    *,
    force: bool = False,
) -> tuple[np.ndarray, dict[str, dict[str, float] | None], Acceptance]:
    """Predict parameters for ``description`` on this file (its mono window sequence at the
    model's rate). A description the decoder does not know (:func:`check_description`) is
    refused with :class:`DescriptionRefused` naming what it is nearest to and what it knows,
    unless ``force``. Returns (the normalised vector, the physical parameters per effect, None
    where bypassed, the acceptance check)."""
    spec = decoder.windows
    if embedder.sampling_rate != spec.sample_rate or embedder.window_samples != spec.window:
        raise ValueError(
            f"the audio model runs at {embedder.sampling_rate} Hz with {embedder.window_samples}-"
            f"sample windows; the decoder was trained on {spec.sample_rate} Hz / {spec.window}"
        )
    text = embedder.embed_texts([description])
    acc = check_description(decoder, description, text[0])
    if not acc.accepted and not force:
        raise DescriptionRefused(refusal_message(description, acc, decoder))
    windows = embed_windows(embedder, [str(audio_path)], spec)
    vector = decoder.predict(text, windows)[0]
    return vector, decoder.space.physical(vector), acc


# --------------------------------------------------------------------------- what apply accepts


def portable_model(info: Mapping[str, Any], model_out: str | Path) -> dict[str, Any]:
    """A model entry for the model file: a local directory is stored relative to the model
    file's folder (so the file works from any working directory), a hub id as it is."""
    import os

    out = dict(info)
    local = Path(str(out["name_or_path"]))
    out["relative_to_model_file"] = local.is_dir()
    if local.is_dir():
        out["name_or_path"] = os.path.relpath(local.resolve(), Path(model_out).resolve().parent)
    return out


def resolve_model(
    entry: Mapping[str, Any],
    model_path: str | Path,
    override: str | None,
    what: str = "audio model",
    option: str = "--audio-model",
) -> str:
    """The model to load: ``override`` when given; else the stored path, resolved from the
    model file's folder when it was stored relative to it; else the stored hub id."""
    if override:
        return override
    stored = str(entry["name_or_path"])
    if entry.get("relative_to_model_file"):
        local = (Path(model_path).resolve().parent / stored).resolve()
        if not local.is_dir():
            raise FileNotFoundError(
                f"the decoder's {what} model {stored!r} (stored relative to the model file) is "
                f"not at {local}: pass {option} with the {what} id or directory it was made with"
            )
        return str(local)
    return stored


def resolve_clap(decoder: Decoder, model_path: str | Path, override: str | None) -> str:
    """The CLAP the decoder was trained with (see :func:`resolve_model`)."""
    return resolve_model(decoder.audio_model, model_path, override)


@dataclass(frozen=True)
class Acceptance:
    """Whether a description is one the decoder can use (section 6.7 of docs/methods.md):
    its nearest reference description, the cosine and margin there, the gate's values, and
    ``reason`` ("exact", "accepted", or why it is refused)."""

    accepted: bool
    exact: bool
    nearest: str
    cosine: float
    threshold: float
    margin: float
    margin_min: float
    nearest_effect: str | None
    nearest_level: str | None
    reason: str


def check_description(decoder: Decoder, description: str, text_emb: np.ndarray) -> Acceptance:
    """A trained description is accepted as is; another one only when its CLAP text
    embedding's nearest reference is a trained description whose level is the one it names
    (if it names one), with cosine and margin at least the model's calibrated gate."""
    app = decoder.gate
    if "references" not in app:
        raise ValueError(
            "this decoder_model.pt predates apply's near-miss gate (no reference "
            "descriptions): rerun phase3 to write it again"
        )
    refs = list(app["references"])
    emb = np.asarray(app["reference_embeddings"], dtype=np.float64)
    k, cos, margin = nearest_reference(
        emb, [(r["effect"], r["level_word"]) for r in refs], text_emb
    )
    exact = any(r["trained"] and r["text"] == description for r in refs)
    words = decoder.level_words
    reason = "exact" if exact else gate_decision(description, refs[k], cos, margin, app, words)
    return Acceptance(
        accepted=reason in ("exact", "accepted"),
        exact=exact,
        nearest=refs[k]["text"],
        cosine=cos,
        threshold=float(app["threshold"]),
        margin=margin,
        margin_min=float(app["margin"]),
        nearest_effect=refs[k]["effect"],
        nearest_level=refs[k]["level_word"],
        reason=reason,
    )


def refusal_message(description: str, acc: Acceptance, decoder: Decoder) -> str:
    """One line: what ``description`` is nearest to and why that is not enough."""
    near = f"{acc.nearest!r} ({acc.nearest_effect}, {acc.nearest_level}; cosine {acc.cosine:.4f})"
    if acc.reason == "untrained_effect":
        why = f"it is nearest to {near}, an image effect this decoder was not trained on"
    elif acc.reason == "other_level":
        named = ", ".join(sorted(named_levels(description, decoder.level_words)))
        why = f"it names level {named} but is nearest to {near}, a description of another level"
    elif acc.reason == "cosine":
        why = f"its nearest trained description {near} is under the threshold {acc.threshold:.4f}"
    else:
        why = (
            f"its nearest trained description {near} is only {acc.margin:.4f} above a "
            f"description of another level or effect (margin needed {acc.margin_min:.4f})"
        )
    return (
        f"{description!r} is not a description this decoder knows: {why}. It knows "
        f"{known_descriptions(decoder)}"
    )


class DescriptionRefused(ValueError):
    """``apply`` refuses a description (:func:`check_description`); ``--force`` goes on."""


def known_descriptions(decoder: Decoder) -> str:
    """One paragraph naming the pairs, level words and templates a decoder was trained on."""
    pairs = ", ".join(f"{p['image_effect']} -> {p['audio_effect']}" for p in decoder.pairs)
    words = ", ".join(decoder.level_words)
    tpl = "; ".join(f"{e}: {' | '.join(t)}" for e, t in decoder.templates.items())
    return f"pairs: {pairs}; level words: {words}; templates: {tpl}"
