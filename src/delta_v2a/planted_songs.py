"""More songs for the planted Phase 3 world, generated like the demo's (docs/methods.md §9).

Why: the demo's 15 songs leave 3 test files, too few for any verdict over files (the smallest
sign-test p with n files is 2^-n). Phase 3's positive control needs at least 12 test files, so
60 songs at the default 20 % test share. They are the demo's pieces (the music21 corpus, the
demo's synthesiser and voices) played as variants: variant v transposes the piece by
``TRANSPOSE[v]`` semitones and plays it at ``TEMPO[v]`` times its tempo, each with its own
synthesiser seed. A transposition moves the low-band energies the planted audio tower reads as
the song's nuisance (and, in ``planted:audio-spread``, its sensitivity), so the variants are
different songs to the embedders. The photos are the demo's. Nothing is downloaded; the output
is byte-identical given the seed and never committed: ``python -m delta_v2a.planted_songs OUT``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import zlib
from pathlib import Path

from delta_v2a import demo

#: semitones and tempo factor of each variant (variant 0 is the demo's own rendering)
TRANSPOSE = (0, 5, -5, 9, -9, 3, -3, 7)
TEMPO = (1.0, 0.9, 1.1, 0.95, 1.05, 0.85, 1.15, 1.0)
DEFAULT_SONGS = 60


def variant_notes(piece: demo._Piece, v: int) -> tuple[list[demo._Note], int]:
    """The piece's notes transposed and re-timed for variant ``v`` (within its length)."""
    notes, parts = demo.score_notes(piece.work, piece.qpm * TEMPO[v], piece.seconds)
    shift = 2.0 ** (TRANSPOSE[v] / 12.0)
    return [dataclasses.replace(n, freq=n.freq * shift) for n in notes], parts


def build_planted_songs(out_dir: Path, songs: int = DEFAULT_SONGS, seed: int = 0) -> dict:
    """The demo media under ``out_dir`` (photos and the 15 songs), plus variants of its
    pieces until there are ``songs`` songs; returns the file counts per genre."""
    max_songs = len(demo.PIECES) * len(TRANSPOSE)
    if not len(demo.PIECES) <= songs <= max_songs:
        raise ValueError(f"songs must be in [{len(demo.PIECES)}, {max_songs}], got {songs}")
    out_dir = Path(out_dir)
    summary = demo.build_demo(out_dir, seed=seed)
    for k in range(songs - len(demo.PIECES)):
        v, piece = 1 + k // len(demo.PIECES), demo.PIECES[k % len(demo.PIECES)]
        notes, parts = variant_notes(piece, v)
        name = f"{piece.name}_v{v}"
        file_seed = zlib.crc32(f"{seed}/{name}".encode())
        samples = demo.render(notes, parts, piece.genre, piece.seconds, file_seed)
        path = out_dir / "audio" / piece.genre / f"{name}.wav"
        demo._write_audio(samples, path, "wav")
        summary["audio"][piece.genre] += 1
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m delta_v2a.planted_songs",
        description="Build the planted Phase 3 world's media: the demo's, with more songs.",
    )
    parser.add_argument("out_dir", type=Path, help="output folder (e.g. resources/planted)")
    parser.add_argument("--songs", type=int, default=DEFAULT_SONGS, help="songs (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="synthesiser seed (default 0)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        summary = build_planted_songs(args.out_dir, args.songs, args.seed)
    except (ValueError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, sort_keys=True))
    print(f"planted media written to {args.out_dir} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
