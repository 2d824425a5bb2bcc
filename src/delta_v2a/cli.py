"""Command line: ``delta-v2a apply`` renders an audio file the way a trained decoder hears a
description of an image effect; ``delta-v2a info`` says what a decoder knows.

    delta-v2a apply --model results/decoder_model.pt --audio in.wav \
        --describe "a very blurry photo" --out out.wav
    delta-v2a info results/decoder_model.pt

It needs only ``decoder_model.pt`` (weights, architecture, parameter space, level words, the
CLAP model id or its path relative to the model file) and that CLAP model (``--clap`` points
elsewhere when the stored one is not reachable from here). A description the decoder does not
know is refused (exit 2) unless ``--force``. The output is the whole file, mono float32 WAV at
the model's rate.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def _apply(args: argparse.Namespace) -> int:
    import soundfile as sf

    from delta_v2a.models import load_embedder
    from delta_v2a.phase3.artifact import apply_decoder, load_decoder, resolve_clap
    from delta_v2a.storage import atomic_path

    decoder = load_decoder(args.model, device=args.device)
    audio_model = decoder.audio_model
    clap = resolve_clap(decoder.doc, args.model, args.clap)
    try:
        embedder = load_embedder(
            "audio",
            clap,
            device=args.device,
            dtype=audio_model.get("dtype", "fp32"),
            normalize=bool(audio_model.get("normalize", True)),
        )
    except OSError as err:
        raise ValueError(
            f"cannot load the decoder's CLAP model {clap!r} ({err}); pass --clap with the CLAP "
            "id or directory it was trained with"
        ) from err
    rendered, vector, physical, acc = apply_decoder(
        decoder, embedder, args.audio, args.describe, force=args.force
    )
    if not acc.accepted:
        print(
            f"delta-v2a apply: WARNING: --force: {args.describe!r} is not a known description "
            f"(nearest {acc.nearest!r}, cosine {acc.cosine:.4f} < {acc.threshold:.4f})",
            file=sys.stderr,
        )
    out = Path(args.out)
    with atomic_path(out, out.suffix) as tmp:
        sf.write(tmp, rendered, decoder.space.sample_rate, subtype="FLOAT", format="WAV")
    result = {
        "description": args.describe,
        "audio": str(args.audio),
        "out": str(out),
        "normalised": {n: float(v) for n, v in zip(decoder.space.names, vector, strict=True)},
        "parameters": physical,
        "model": str(args.model),
        "accepted": {
            "exact": acc.exact,
            "nearest": acc.nearest,
            "cosine": acc.cosine,
            "threshold": acc.threshold,
            "forced": not acc.accepted,
        },
        "not_science": bool(decoder.doc.get("not_science", False)),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.describe!r} -> {out}")
    for effect, params in physical.items():
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
        print(f"  [{decoder.doc.get('note', 'tiny random models: not science')}]")
    return 0


def _info(args: argparse.Namespace) -> int:
    """Pairs, level words, templates, model ids, target mode and the test figures."""
    from delta_v2a.phase3.artifact import load_decoder

    doc = load_decoder(args.model).doc
    if args.json:
        keep = (
            "pairs",
            "level_words",
            "templates",
            "heldout_templates",
            "target",
            "audio_model",
            "windows",
            "best_epoch",
            "test_figures",
            "verdict",
            "note",
        )
        out = {k: doc.get(k) for k in keep}
        out["apply_threshold"] = doc["apply"]["threshold"]
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"{args.model}: Delta V2A decoder (format {doc['format_version']}, target {doc['target']})"
    )
    for p in doc["pairs"]:
        print(f"  pair: {p['image_effect']} -> {p['audio_effect']} (score {p['score']:.4g})")
    print(f"  level words: {', '.join(doc['level_words'])}")
    for effect, tpl in doc["templates"].items():
        held = set(doc.get("heldout_templates", {}).get(effect, []))
        shown = ", ".join(f"{t!r}" + (" (held out, test only)" if t in held else "") for t in tpl)
        print(f"  templates {effect}: {shown}")
    am = doc["audio_model"]
    where = " (relative to the model file)" if am.get("relative_to_model_file") else ""
    print(f"  CLAP: {am['name_or_path']}{where}, {am.get('dtype', 'fp32')}")
    print(f"  apply threshold: cosine >= {doc['apply']['threshold']:.4f} to a trained description")
    print(f"  verdict: {doc['verdict']['message']}")
    for name, fig in doc["test_figures"].items():
        m = fig["param_mse"]
        if m["mean"] is not None:
            print(f"  test {name}: MSE {m['mean']:.4g} [{m['low']:.4g}, {m['high']:.4g}]")
    if doc.get("not_science"):
        print(f"  [{doc.get('note', 'tiny random models: not science')}]")
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
    p.add_argument("--audio", required=True, help="input audio file (wav, flac, mp3)")
    p.add_argument("--describe", required=True, help='e.g. "a very blurry photo"')
    p.add_argument("--out", required=True, help="output WAV (mono float32)")
    p.add_argument("--clap", help="CLAP id or directory, instead of the one stored in the model")
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
    from delta_v2a import transfer_cli

    transfer_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # One line, no traceback, for what a user can fix: a missing or unreadable file or model,
    # a device this machine lacks (checked first, before any model is loaded).
    try:
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
