"""The transfer use case: load a study's models once, recognise an image edit, turn it into
audio effect levels (decoder or exact route) and render the song (docs/methods.md §7).

The command (``delta-v2a transfer`` in :mod:`delta_v2a.cli`) and the workflow's examples job
(:mod:`delta_v2a.jobs.transfer`) both call :func:`load_setup` and :func:`transfer`; the
arithmetic is in :mod:`delta_v2a.transfer.geometry`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from delta_v2a.provenance import NOT_SCIENCE
from delta_v2a.transfer import geometry as tr
from delta_v2a.transfer.types import TransferPayload


class Refused(Exception):
    """The inputs are valid but there is nothing (trustworthy) to transfer. ``forceable``:
    whether ``--force`` would go on (a hint that says so only where it is true)."""

    def __init__(self, why: str, forceable: bool = False) -> None:
        super().__init__(why)
        self.forceable = forceable


@dataclass
class Setup:
    """The loaded model file and the two towers."""

    decoder: Any
    payload: TransferPayload
    clip: Any
    clap: Any
    model_path: str

    @property
    def not_science(self) -> bool:
        names = [self.payload.image_model.get("name_or_path") or ""]
        names.append(self.decoder.audio_model.get("name_or_path") or "")
        tiny_id = any("tiny" in Path(str(n)).name.lower() for n in names)
        towers = any(getattr(m.info, "tiny", False) for m in (self.clip, self.clap) if m)
        return self.decoder.not_science or tiny_id or towers

    @property
    def note(self) -> str:
        """What kind of not-science: the model file's own note (tiny random or planted), else
        the tiny-model note; empty for real models."""
        if not self.not_science:
            return ""
        return self.decoder.note or NOT_SCIENCE


@dataclass
class Step:
    """One audio effect to render: from which image effect (or description) and how."""

    audio_effect: str | None  # None: the whole predicted vector (the --describe route)
    description: str
    source: dict[str, Any] = field(default_factory=dict)


def load_setup(
    model: str, device: str = "cpu", clip: str | None = None, clap: str | None = None
) -> Setup:
    """Load ``decoder_model.pt`` with its ``transfer`` entry and both towers it names
    (``clip`` / ``clap``: the --image-model / --audio-model overrides)."""
    from delta_v2a.models import AUTO, load_embedder
    from delta_v2a.phase3.artifact import load_decoder, resolve_clap, resolve_model

    if not Path(model).is_file():
        raise FileNotFoundError(f"--model {model}: no such file")
    decoder = load_decoder(model, device=device)
    payload = decoder.transfer
    if payload is None or not payload.prototypes:
        raise ValueError(
            f"{model}: the model file has no 'transfer' entry (image prototypes, strength "
            "curves, pairs): it predates delta transfer; rerun phase3 to write it"
        )
    audio = decoder.audio_model
    clap_e = load_embedder(
        "audio",
        resolve_clap(decoder, model, clap),
        family=AUTO if clap else audio.get("family", AUTO),
        device=device,
        dtype=audio.get("dtype", "fp32"),
        normalize=bool(audio.get("normalize", True)),
    )
    image = payload.image_model
    clip_e = load_embedder(
        "image",
        resolve_model(image, model, clip, "image model", "--image-model"),
        family=AUTO if clip else image.get("family", AUTO),
        device=device,
        dtype=image.get("dtype", "fp32"),
        normalize=bool(image.get("normalize", True)),
    )
    if clip_e.dim != payload.dim:
        raise ValueError(
            f"{model}: the image prototypes are {payload.dim}-d but "
            f"{image['name_or_path']} gives {clip_e.dim}-d embeddings"
        )
    return Setup(decoder, payload, clip_e, clap_e, str(model))


# --------------------------------------------------------------------------- recognition


def embed_photos(clip: Any, paths: list[str]) -> np.ndarray:
    """Both photos through extraction's own path (resize short side, centre crop, no effect)."""
    from delta_v2a.extract import Decoding, render
    from delta_v2a.media import MediaFile

    for flag, p in zip(("--before", "--after"), paths, strict=True):
        if not Path(p).is_file():
            raise FileNotFoundError(f"{flag} {p}: no such file")
    decoding = Decoding("image", image_size=clip.input_size)
    images = [render(MediaFile(str(p), "transfer", "image"), decoding, None, {}) for p in paths]
    return clip.embed_images(images)


def recognise(setup: Setup, before: str, after: str, force: bool) -> tuple[dict, list[Step]]:
    """What the photo edit is, and the audio steps it asks for (raises Refused)."""
    from delta_v2a.phase3.dataset import describe, level_word

    pay = setup.payload
    emb = embed_photos(setup.clip, [before, after])
    effects = list(pay.effects)
    dec = tr.decompose(emb[1] - emb[0], pay.units, effects)
    th = pay.thresholds
    seen = dec.to_dict() | {"threshold": th.explained_share_min, "warnings": []}
    why = tr.refusal(dec, th.explained_share_min)
    if why and (not force or dec.delta_norm <= tr.ZERO_DELTA):
        raise Refused(why, forceable=not force and dec.delta_norm > tr.ZERO_DELTA)
    if why:
        seen["warnings"].append(f"--force: {why}")
    names = tr.recognise(dec, th.component_share_min)
    if not names:
        raise Refused("no known effect carries a share of the image delta")
    words = setup.decoder.level_words
    templates = setup.decoder.templates
    steps, skipped = [], []
    for name in names:
        info = seen["effects"][name]
        theta, inside = pay.curves[name].level(info["strength"])
        info.update(theta=theta, theta_clipped=not inside, recognised=True)
        pair = pay.pair_of(name)
        if pair is None or name not in templates:
            skipped.append(f"{name} (no pair)")
            continue
        info["pair"] = pair.to_dict()  # the report shows the pair as the model file holds it
        if pair.significant is not True:
            p = pair.p_adjusted
            label = f"{name} -> {pair.audio_effect} (p_adj = {p if p is None else f'{p:.3g}'})"
            if not force:
                skipped.append(label + " not significant")
                continue
            seen["warnings"].append(f"--force: using the non-significant pair {label}")
        # The first template of an effect is a training one (held-out paraphrases come last).
        template = templates[name] if isinstance(templates[name], str) else templates[name][0]
        text = describe(template, level_word(theta, words))
        steps.append(Step(pair.audio_effect, text, {"image_effect": name, **info}))
    if not steps:
        raise Refused(
            "recognised " + ", ".join(names) + " but no usable pair: " + "; ".join(skipped),
            forceable=not force and any(s.endswith("not significant") for s in skipped),
        )
    seen["skipped"] = skipped
    return seen, steps


# --------------------------------------------------------------------------- audio levels


def decoder_levels(setup: Setup, audio: str, steps: list[Step]) -> np.ndarray:
    """One decoder forward pass per step's description (the ``apply`` computation), each step
    keeping its own audio effect's axes; the stronger value wins where two steps share one."""
    from delta_v2a.phase3.windows import embed_windows

    dec = setup.decoder
    windows = embed_windows(setup.clap, [str(audio)], dec.windows)
    text = setup.clap.embed_texts([s.description for s in steps])
    preds = dec.predict(text, np.repeat(windows, len(steps), axis=0))
    vector = np.zeros(dec.space.dim, dtype=np.float64)
    for step, pred in zip(steps, preds, strict=True):
        idx = dec.space.axes_of(step.audio_effect) if step.audio_effect else range(dec.space.dim)
        for k in idx:
            vector[k] = max(vector[k], float(pred[k]))
    return vector


def song_curve(setup: Setup, audio: str, effect: str, grid: np.ndarray) -> np.ndarray:
    """``g(u) = ‖CLAP(DSP_effect(A, u)) − CLAP(A)‖`` on the song's centred window (extraction's
    window and pre-roll), every u rendered through the decoder's own parameter space."""
    from delta_v2a.media import load_audio

    dec, clap = setup.decoder, setup.clap
    span = load_audio(audio, dec.space.sample_rate, clap.window_samples, dec.preroll)
    clips = [
        dec.space.render(
            span, dec.space.sample_rate, dec.space.target(effect, float(u)), preroll=dec.preroll
        )
        for u in grid
    ]
    emb = clap.embed_audio(clips).astype(np.float64)
    return np.linalg.norm(emb - emb[0], axis=1)


def exact_levels(setup: Setup, audio: str, steps: list[Step]) -> tuple[np.ndarray, list[dict]]:
    """Per step: the u whose rendered ‖Δ_audio‖ equals κ · m_i(θ) on this song's own curve."""
    dec, pay = setup.decoder, setup.payload
    grid = np.linspace(0.0, 1.0, pay.u_grid)
    vector = np.zeros(dec.space.dim, dtype=np.float64)
    notes = []
    for step in steps:
        src = step.source
        image_effect = src["image_effect"]
        target = pay.pair_of(image_effect).kappa * pay.curves[image_effect].at(src["theta"])
        g = song_curve(setup, audio, step.audio_effect, grid)
        u, reached = tr.solve_monotone(grid, g, target)
        for k in dec.space.axes_of(step.audio_effect):
            vector[k] = max(vector[k], u)
        notes.append(
            {
                "audio_effect": step.audio_effect,
                "target_norm": float(target),
                "u": u,
                "reached": reached,
                "grid": grid.tolist(),
                "curve": g.tolist(),
            }
        )
    return vector, notes


# --------------------------------------------------------------------------- the command


def transfer(
    setup: Setup,
    *,
    audio: str,
    out: str,
    before: str | None = None,
    after: str | None = None,
    describe: str | None = None,
    exact: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Recognise (photos) or take the description, find the levels, render, return the report."""
    from delta_v2a.audio_out import check_out_name
    from delta_v2a.transfer.render import render_file

    check_out_name(out)
    start = time.perf_counter()
    if not Path(audio).is_file():
        raise FileNotFoundError(f"--audio {audio}: no such file")
    if describe is not None:
        if exact:
            raise ValueError("--exact needs photos: a description carries no measured strength")
        seen, steps = {"description": describe, "warnings": []}, [Step(None, describe)]
    else:
        if before is None or after is None:
            raise ValueError("give --before and --after (or --describe TEXT)")
        seen, steps = recognise(setup, before, after, force)
    space = setup.decoder.space
    if exact:
        vector, notes = exact_levels(setup, audio, steps)
    else:
        vector, notes = decoder_levels(setup, audio, steps), []
    physical = space.physical(vector)
    # the chain at the song's own rate and channels; the model read its mono windows
    written = render_file(physical, list(space.effects), audio, out)
    active = [e for e, p in physical.items() if p is not None]
    return {
        "route": "exact" if exact else ("describe" if describe is not None else "decoder"),
        "saw": seen,
        "steps": [{"audio_effect": s.audio_effect, "description": s.description} for s in steps],
        "exact": notes,
        "normalised": {n: float(v) for n, v in zip(space.names, vector, strict=True)},
        "parameters": physical,
        "chain": tr.chain_order(active, list(space.effects)),
        "audio": str(audio),
        "out": str(out),
        "written": written,
        "model": setup.model_path,
        "not_science": setup.not_science,
        "note": setup.note,
        "seconds": time.perf_counter() - start,
    }


def written_line(written: dict[str, Any]) -> str:
    """What the output file is: "FLAC, 44100 Hz, 2 channels"."""
    n = written["channels"]
    return f"{written['format']}, {written['sample_rate']} Hz, {n} channel{'s' * (n != 1)}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def format_report(result: dict[str, Any], space: Any) -> list[str]:
    """The human-readable account: what was seen, which pairs, what was rendered."""
    lines = []
    seen = result["saw"]
    if "description" in seen:
        lines.append(f"description {seen['description']!r} (text route, as `apply`)")
    else:
        lines.append(
            f"saw: |Δ| = {seen['delta_norm']:.4g}, explained {_pct(seen['explained_share'])} "
            f"(threshold {_pct(seen['threshold'])}), residual {seen['residual_norm']:.4g}, "
            f"cosine of the explained part {seen['cosine_explained'] or float('nan'):.3f}"
        )
        for name, e in seen["effects"].items():
            if not e.get("recognised"):
                continue
            pair = e.get("pair")
            p = pair.get("p_adjusted") if pair else None
            paired = (
                f"pair {name} -> {pair['audio_effect']} (Phase 1 p_adj = "
                f"{'untested' if p is None else f'{p:.3g}'})"
                if pair
                else "no pair"
            )
            lines.append(
                f"  {name}: strength {e['strength']:.4g}, share {_pct(e['share'])}, level "
                f"θ = {e['theta']:.3f}{' (clipped)' if e['theta_clipped'] else ''}; {paired}"
            )
    for skipped in seen.get("skipped", []):
        lines.append(f"  not used: {skipped}")
    for step in result["steps"] if result["route"] == "decoder" else []:
        if step["audio_effect"]:
            lines.append(
                f"  decoder description for {step['audio_effect']}: {step['description']!r}"
            )
    for note in result["exact"]:
        lines.append(
            f"  exact: {note['audio_effect']} target |Δ_audio| = {note['target_norm']:.4g} -> "
            f"u = {note['u']:.3f}{'' if note['reached'] else ' (not reachable: clipped)'}"
        )
    lines.append(f"did ({result['route']} route, chain {' -> '.join(result['chain']) or 'none'}):")
    for effect, params in result["parameters"].items():
        if params is None:
            lines.append(f"  {effect}: bypassed")
            continue
        shown = ", ".join(
            f"{a.param} = {params[a.param]:.4g}{(' ' + a.unit) if a.unit else ''} "
            f"(u = {result['normalised'][a.name]:.3f})"
            for a in space.axes
            if a.effect == effect
        )
        lines.append(f"  {effect}: {shown}")
    lines.append(
        f"-> {result['out']} ({written_line(result['written'])}; {result['seconds']:.2f} s)"
    )
    lines += [f"  note: {n}" for n in result["written"]["notes"]]
    lines += [f"WARNING: {w}" for w in seen.get("warnings", [])]
    if result["not_science"]:
        lines.append(f"[{result['note']}]")
    return lines
