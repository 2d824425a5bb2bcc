"""Command line: ``delta-v2a apply`` renders an audio file the way a trained decoder hears a
description of an image effect; ``delta-v2a info`` says what a decoder knows.

    delta-v2a apply --model results/decoder_model.pt --audio in.wav \
        --describe "a very blurry photo" --out out.wav
    delta-v2a info results/decoder_model.pt

It needs only ``decoder_model.pt`` (weights, architecture, parameter space, level words, the
audio model's id or its path relative to the model file) and that model (``--audio-model``
points elsewhere when the stored one is not reachable from here). A description the decoder does not
know (nearest to another effect or level, or too far or too ambiguous: docs/methods.md §6.7) is
refused (exit 3, one line naming what it is nearest to) unless ``--force``; bad input exits 2.
The output is the whole file at its own rate and channels, in the format the output name asks
for (.wav float32, .flac 24-bit, .ogg Vorbis); the model reads its mono 48 kHz windows.

``delta-v2a transfer``: edit a photo, and the song follows (docs/methods.md §7).

    delta-v2a transfer --before a.jpg --after b.jpg --audio song.wav --out song_edited.wav \
        [--model results/decoder_model.pt] [--exact] [--force] [--json]
    delta-v2a transfer --describe "a very blurry photo" --audio song.wav --out out.wav

Both photos are embedded with the study's image model (id from the model file) exactly as
extraction does; their delta is decomposed onto the study's unit image-effect prototypes; each
recognised effect with a significant pair becomes that audio effect's level, by the decoder (one
forward pass on the description of that strength) or, with ``--exact``, by the song's own
strength curve; the chain is rendered over the whole file at its own rate and channels.
``--describe`` skips the photos (the ``apply`` route); everything after recognition is shared.
Exit 0: written; 2: bad input; 3: refused (``--force`` goes on where something can be done).

``delta-v2a convert-clap CHECKPOINT OUT_DIR``: the original LAION-CLAP checkpoint as a
transformers ClapModel folder (docs/models.md). ``delta-v2a fetch-models --configfile CONFIG``:
download every pinned model a config names (where there is network).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Exit codes of ``apply`` and ``transfer`` beside 0 (written): bad input, refused.
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3
OUT_HELP = "output file: .wav (float32), .flac (24-bit) or .ogg; the input's rate and channels"
#: Options renamed when the towers were named by modality (issue 32): old -> new.
RENAMED_OPTIONS = {"--clip": "--image-model", "--clap": "--audio-model"}


def _decoder_audio_model(decoder: Any, args: argparse.Namespace) -> Any:
    """The audio model the decoder was trained with (or ``--audio-model``), loaded as it was:
    family, dtype and normalisation from the model file."""
    from delta_v2a.models import AUTO, load_embedder
    from delta_v2a.phase3.artifact import resolve_clap

    audio_model = decoder.audio_model
    clap = resolve_clap(decoder, args.model, args.audio_model)
    try:
        return load_embedder(
            "audio",
            clap,
            family=AUTO if args.audio_model else audio_model.get("family", AUTO),
            device=args.device,
            dtype=audio_model.get("dtype", "fp32"),
            normalize=bool(audio_model.get("normalize", True)),
        )
    except OSError as err:
        raise ValueError(
            f"cannot load the decoder's audio model {clap!r} ({err}); pass --audio-model with "
            "the id or directory it was trained with"
        ) from err


def _apply_result(args, decoder, vector, physical, acc, written) -> dict[str, Any]:
    """What ``apply --json`` prints: the parameters, the file written and the gate's decision."""
    return {
        "description": args.describe,
        "audio": str(args.audio),
        "out": str(Path(args.out)),
        "written": written,
        "normalised": {n: float(v) for n, v in zip(decoder.space.names, vector, strict=True)},
        "parameters": physical,
        "model": str(args.model),
        "accepted": {
            "exact": acc.exact,
            "nearest": acc.nearest,
            "cosine": acc.cosine,
            "nearest_effect": acc.nearest_effect,
            "nearest_level": acc.nearest_level,
            "threshold": acc.threshold,
            "margin": acc.margin,
            "margin_needed": acc.margin_min,
            "decision": acc.reason,
            "forced": not acc.accepted,
        },
        "not_science": decoder.not_science,
    }


def _print_applied(decoder: Any, result: dict[str, Any]) -> None:
    """The human-readable account of ``apply``: the file, each effect's parameters."""
    from delta_v2a.transfer.usecase import written_line

    print(f"{result['description']!r} -> {result['out']} ({written_line(result['written'])})")
    for note in result["written"]["notes"]:
        print(f"  note: {note}")
    for effect, params in result["parameters"].items():
        if params is None:
            print(f"  {effect}: bypassed")
            continue
        axes = [a for a in decoder.space.axes if a.effect == effect]
        shown = ", ".join(
            f"{a.param} = {params[a.param]:.4g}{(' ' + a.unit) if a.unit else ''} "
            f"(u = {result['normalised'][a.name]:.3f})"
            for a in axes
        )
        print(f"  {effect}: {shown}")
    if result["not_science"]:
        print(f"  [{decoder.note or 'tiny random models: not science'}]")


def _apply(args: argparse.Namespace) -> int:
    from delta_v2a.phase3.artifact import DescriptionRefused, load_decoder, predict_description
    from delta_v2a.transfer.render import render_file

    decoder = load_decoder(args.model, device=args.device)
    embedder = _decoder_audio_model(decoder, args)
    try:
        vector, physical, acc = predict_description(
            decoder, embedder, args.audio, args.describe, force=args.force
        )
    except DescriptionRefused as err:
        print(
            f"delta-v2a apply: refused (exit {EXIT_REFUSED}): {err} (--force applies it anyway)",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    if not acc.accepted:
        print(
            f"delta-v2a apply: WARNING: --force: {args.describe!r} is not a known description "
            f"(nearest {acc.nearest!r}, {acc.nearest_effect} {acc.nearest_level}, cosine "
            f"{acc.cosine:.4f}, margin {acc.margin:.4f}; refused for: {acc.reason})",
            file=sys.stderr,
        )
    # the chain on the user's own signal (rate, channels); the model read its mono windows
    written = render_file(physical, list(decoder.space.effects), args.audio, Path(args.out))
    result = _apply_result(args, decoder, vector, physical, acc, written)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_applied(decoder, result)
    return 0


def _gate_lines(app: dict[str, Any]) -> list[str]:
    """What ``apply`` accepts, and the gate's validation and held-out figures."""
    if "margin" not in app:
        return [f"  apply threshold: cosine >= {app['threshold']:.4f} to a trained description"]
    val, test = app["validation"], app["test"]
    rule = (
        f"cosine >= {app['threshold']:.4f} to a trained description of one effect and level, "
        f"margin >= {app['margin']:.4f} over another"
        if app["threshold"] <= 1.0
        else "trained descriptions only (no validation paraphrase could be told apart)"
    )
    return [
        f"  apply accepts: {rule}",
        f"  apply gate on validation: {val['paraphrases_accepted']} of {val['n_paraphrases']} "
        f"paraphrases accepted, {val['near_misses_refused']} of {val['n_near_misses']} near "
        f"misses and {val['controls_refused']} of {val['n_controls']} controls refused; "
        f"held-out test: {test['paraphrases_accepted']} of {test['n_paraphrases']} paraphrases "
        f"accepted ({test['paraphrases_accepted_wrong_meaning']} with another meaning), "
        f"{test['near_misses_refused']} of {test['n_near_misses']} near misses refused",
    ]


def _info(args: argparse.Namespace) -> int:
    """Pairs, level words, templates, model ids, target mode and the test figures."""
    import dataclasses

    from delta_v2a.phase3.artifact import load_decoder

    dec = load_decoder(args.model)
    if args.json:
        keep = ("pairs", "level_words", "templates", "heldout_templates", "validation_templates",
                "target", "audio_model")  # fmt: skip
        out = {k: getattr(dec, k) for k in keep} | {"windows": dataclasses.asdict(dec.windows)}
        out |= {"best_epoch": dec.best_epoch, "test_figures": dec.test_figures}
        out |= {"verdict": dec.verdict, "note": dec.note}
        out["apply_threshold"] = dec.gate["threshold"]
        out["apply_margin"] = dec.gate.get("margin")
        out["apply_validation"] = dec.gate.get("validation")
        out["apply_test"] = dec.gate.get("test")
        print(json.dumps(out, indent=2))
        return 0
    print(f"{args.model}: Delta V2A decoder (format {dec.format_version}, target {dec.target})")
    for p in dec.pairs:
        print(f"  pair: {p['image_effect']} -> {p['audio_effect']} (score {p['score']:.4g})")
    print(f"  level words: {', '.join(dec.level_words)}")
    for effect, tpl in dec.templates.items():
        held = set(dec.heldout_templates.get(effect, []))
        val = set(dec.validation_templates.get(effect, []))
        tags = {t: " (held out, test only)" for t in held}
        tags |= {t: " (held out, calibrates apply)" for t in val}
        shown = ", ".join(f"{t!r}{tags.get(t, '')}" for t in tpl)
        print(f"  templates {effect}: {shown}")
    am = dec.audio_model
    where = " (relative to the model file)" if am.get("relative_to_model_file") else ""
    print(f"  CLAP: {am['name_or_path']}{where}, {am.get('dtype', 'fp32')}")
    print("\n".join(_gate_lines(dec.gate)))
    print(f"  verdict: {dec.verdict['message']}")
    for name, fig in dec.test_figures.items():
        m = fig["param_mse"]
        if m["mean"] is not None:
            print(f"  test {name}: MSE {m['mean']:.4g} [{m['low']:.4g}, {m['high']:.4g}]")
    if dec.not_science:
        print(f"  [{dec.note or 'tiny random models: not science'}]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from delta_v2a import __version__

    parser = argparse.ArgumentParser(prog="delta-v2a", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "apply",
        help="render an audio file with the parameters a decoder predicts for a description",
    )
    p.add_argument("--model", required=True, help="decoder_model.pt written by Phase 3")
    p.add_argument("--audio", required=True, help="input audio file (wav, flac, ogg, mp3)")
    p.add_argument("--describe", required=True, help='e.g. "a very blurry photo"')
    p.add_argument("--out", required=True, help=OUT_HELP)
    p.add_argument(
        "--audio-model", help="audio model id or directory, instead of the one stored in the model"
    )
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    p.add_argument("--json", action="store_true", help="print the parameters as JSON")
    p.add_argument(
        "--force", action="store_true", help="apply a description the decoder does not know"
    )
    p.set_defaults(func=_apply)
    i = sub.add_parser("info", help="what a decoder knows: pairs, words, templates, test figures")
    i.add_argument("model", help="decoder_model.pt written by Phase 3")
    i.add_argument("--json", action="store_true", help="print as JSON")
    i.set_defaults(func=_info)
    add_transfer_parser(sub)
    add_model_parsers(sub)
    add_verbose_option(parser, sub)
    return parser


def add_transfer_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``transfer`` on the main parser's subparsers."""
    p = subparsers.add_parser(
        "transfer", help="edit a song the way a photo was edited (before/after photos)"
    )
    p.add_argument("--before", help="the photo before the edit")
    p.add_argument("--after", help="the photo after the edit")
    p.add_argument("--describe", help="skip the photos: a description, as `apply` takes")
    p.add_argument("--audio", required=True, help="input audio file (wav, flac, ogg, mp3)")
    p.add_argument("--out", required=True, help=OUT_HELP)
    p.add_argument("--model", default="results/decoder_model.pt", help="decoder_model.pt")
    p.add_argument("--exact", action="store_true", help="per-song search on its strength curve")
    p.add_argument("--force", action="store_true", help="go on (with a warning) where refused")
    p.add_argument("--image-model", help="image model id or directory instead of the stored one")
    p.add_argument("--audio-model", help="audio model id or directory instead of the stored one")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_transfer)
    return p


def check_apply_inputs(args: argparse.Namespace) -> None:
    """The model and the song exist, the output name is a format ``apply`` writes and the
    description is not empty: refused before torch or transformers load (they take seconds)."""
    from delta_v2a.audio_out import check_out_name

    if not args.describe.strip():
        raise ValueError("--describe: the description is empty")
    for flag, path in (("--model", args.model), ("--audio", args.audio)):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{flag} {path}: no such file")
    check_out_name(args.out)


def check_transfer_inputs(args: argparse.Namespace) -> None:
    """Every named file exists, the output name is a format ``transfer`` writes and the routes
    are consistent, before any model loads (and before torch or transformers are imported)."""
    from delta_v2a.audio_out import check_out_name

    check_out_name(args.out)
    photos = [(f, getattr(args, f[2:])) for f in ("--before", "--after")]
    if args.describe is None and any(p is None for _, p in photos):
        raise ValueError("give --before and --after (or --describe TEXT)")
    if args.describe is not None and any(p is not None for _, p in photos):
        raise ValueError("--describe replaces the photos: give one or the other")
    if args.describe is not None and args.exact:
        raise ValueError("--exact needs photos: a description carries no measured strength")
    named = [("--audio", args.audio), ("--model", args.model)] + photos
    for flag, path in named:
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"{flag} {path}: no such file")


def _transfer(args: argparse.Namespace) -> int:
    """Run ``transfer``; a one-line message and a non-zero exit for bad input or a refusal."""
    from delta_v2a.transfer.usecase import Refused, format_report, load_setup, transfer

    try:
        setup = load_setup(args.model, args.device, args.image_model, args.audio_model)
        result = transfer(
            setup,
            audio=args.audio,
            out=args.out,
            before=args.before,
            after=args.after,
            describe=args.describe,
            exact=args.exact,
            force=args.force,
        )
    except Refused as err:
        hint = " (--force goes on anyway)" if err.forceable else ""
        print(f"delta-v2a transfer: refused: {err}{hint}", file=sys.stderr)
        return EXIT_REFUSED
    except (FileNotFoundError, ValueError) as err:
        print(f"delta-v2a transfer: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("\n".join(format_report(result, setup.decoder.space)))
    return 0


def add_model_parsers(subparsers: Any) -> None:
    """Register ``convert-clap`` and ``fetch-models`` (docs/models.md)."""
    c = subparsers.add_parser(
        "convert-clap",
        help="convert an original LAION-CLAP checkpoint (.pt) to a transformers ClapModel folder",
    )
    c.add_argument("checkpoint", help="e.g. music_audioset_epoch_15_esc_90.14.pt")
    c.add_argument("out_dir", help="the folder to write (config, safetensors, processor, receipt)")
    c.add_argument(
        "--tokenizer",
        default="FacebookAI/roberta-base",
        help="RoBERTa tokenizer: hub id or folder (the reference's roberta-base by default)",
    )
    c.add_argument(
        "--trust-pickle",
        action="store_true",
        help="read a checkpoint that is not the published one as a full pickle (runs its code)",
    )
    c.set_defaults(func=_convert_clap)
    f = subparsers.add_parser(
        "fetch-models", help="download every pinned model a config names (needs network)"
    )
    f.add_argument("--configfile", required=True, help="the workflow config, e.g. config/real.yaml")
    f.set_defaults(func=_fetch_models)


def _convert_clap(args: argparse.Namespace) -> int:
    from delta_v2a.embedders.laion_clap import convert

    receipt = convert(
        Path(args.checkpoint), Path(args.out_dir), args.tokenizer, trust_pickle=args.trust_pickle
    )
    print(f"{args.checkpoint} -> {args.out_dir} (sha256 {receipt['sha256']})")
    if not receipt["sha256_matches"]:
        print(f"delta-v2a convert-clap: WARNING: {receipt['sha256_note']}", file=sys.stderr)
    return 0


def _fetch_models(args: argparse.Namespace) -> int:
    from delta_v2a.models import fetch_models

    for line in fetch_models(args.configfile):
        print(line)
    return 0


def renamed_option(argv: Sequence[str]) -> str | None:
    """The one-line message for an option that was renamed, if ``argv`` uses one."""
    for arg in argv:
        old = arg.split("=", 1)[0]
        if old in RENAMED_OPTIONS:
            return f"{old} is now {RENAMED_OPTIONS[old]} (the towers are named by modality)"
    return None


def add_verbose_option(parser: argparse.ArgumentParser, sub: Any) -> None:
    """``--verbose`` before or after the command: third-party progress bars and info logs."""
    help_ = "show transformers' / huggingface_hub's progress bars and info logs"
    parser.add_argument("--verbose", action="store_true", help=help_)
    for command in sub.choices.values():
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS)


def quiet_third_party(verbose: bool) -> None:
    """Unless ``verbose``: no "Loading weights" bars or info chatter from transformers and
    huggingface_hub, which read these at import (before any command imports them). A value
    the user set in the environment wins."""
    if verbose:
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    renamed = renamed_option(argv)
    if renamed:
        print(f"delta-v2a: error: {renamed}", file=sys.stderr)
        return EXIT_BAD_INPUT
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_third_party(args.verbose)
    # One line, no traceback, for what a user can fix: a missing or unreadable file or model,
    # a device this machine lacks (checked first, before any model is loaded).
    try:
        # the arguments first: a refusal must not wait for torch (seconds) to import
        check = {"apply": check_apply_inputs, "transfer": check_transfer_inputs}.get(args.command)
        if check is not None:
            check(args)
        if getattr(args, "device", "auto") != "auto":
            from delta_v2a.models import resolve_device

            resolve_device(args.device)
        return args.func(args)
    except (OSError, ValueError, RuntimeError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"delta-v2a {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
