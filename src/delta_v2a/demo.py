"""Offline demo media, generated from data that pip packages ship (nothing is downloaded).

Images are real photographs bundled with scikit-image and scikit-learn. Audio is music from the
music21 corpus (Bach chorales, Mozart/Haydn string quartets, fiddle tunes from Ryan's Mammoth
Collection) rendered by the small deterministic additive synthesiser below, one timbre per genre,
because no General-MIDI synthesiser can be assumed offline. The output is never committed:
``python -m delta_v2a.demo OUT_DIR`` rebuilds it, byte-identical for PNG/WAV/FLAC given the seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import shutil
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from delta_v2a.constants import SAMPLE_RATE

SR = SAMPLE_RATE
CLIP_SECONDS = 12.0
TARGET_RMS_DBFS = -14.0
PEAK_LIMIT = 0.9
MARKER = "# Delta V2A demo media"


def _catalogue(name: str) -> list[dict[str, str]]:
    """Rows of a tab-separated catalogue shipped beside this module (data, not code)."""
    import csv
    from importlib.resources import files

    text = (files("delta_v2a") / name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines(), delimiter="\t"))


# --------------------------------------------------------------------------------------------
# images


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        img = getattr(skimage.data, name)()
        return img[0] if isinstance(img, tuple) else img

    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        # The file load_sample_image() reads, located without importing sklearn (saves ~1 s).
        spec = importlib.util.find_spec("sklearn")
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError("scikit-learn is needed for the demo images")
        path = Path(spec.submodule_search_locations[0]) / "datasets" / "images" / filename
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))

    return load


@dataclass(frozen=True)
class _Photo:
    category: str
    name: str
    ext: str
    load: Callable[[], np.ndarray]
    source: str
    licence: str


# Only items shipped inside the wheels (skimage's other data sets need a download via pooch).
# stereo_motorcycle (Middlebury 2014) is left out: its docstring states no licence.
# The catalogue is demo_photos.tsv: category, file name, extension, origin (a skimage.data
# function, or sklearn:<file> for scikit-learn's sample images) and licence.


def _photo(category: str, name: str, ext: str, origin: str, licence: str) -> _Photo:
    if origin.startswith("sklearn:"):
        filename = origin.removeprefix("sklearn:")
        source = f"scikit-learn `load_sample_image('{filename}')`"
        return _Photo(category, name, ext, _sklearn(filename), source, licence)
    source = f"scikit-image `skimage.data.{origin}()`"
    return _Photo(category, name, ext, _skimage(origin), source, licence)


PHOTOS = tuple(_photo(**row) for row in _catalogue("demo_photos.tsv"))


def _write_photo(photo: _Photo, path: Path) -> None:
    arr = np.asarray(photo.load())
    if arr.dtype != np.uint8:
        raise TypeError(f"{photo.name}: expected uint8 pixels, got {arr.dtype}")
    img = Image.fromarray(arr)  # (h, w) -> L, (h, w, 3) -> RGB
    if photo.ext == "jpg":
        img.save(path, format="JPEG", quality=95)
    else:
        img.save(path, format="PNG")


# --------------------------------------------------------------------------------------------
# music


@dataclass(frozen=True)
class _Piece:
    genre: str
    name: str
    ext: str
    work: str  # music21 corpus id
    qpm: float  # quarter notes per minute (corpus files carry no usable tempo)
    seconds: float = CLIP_SECONDS


# The catalogue is demo_pieces.tsv: genre, file name, extension, music21 corpus work, tempo
# and length (empty = CLIP_SECONDS). banish_misfortune_jig is 8 s on purpose: shorter than a
# 10 s window, it exercises repeat-padding.
PIECES = tuple(
    _Piece(
        r["genre"], r["name"], r["ext"], r["work"], float(r["qpm"]),
        float(r["seconds"]) if r["seconds"] else CLIP_SECONDS,
    )
    for r in _catalogue("demo_pieces.tsv")
)  # fmt: skip


@dataclass
class _Note:
    part: int
    start: float  # seconds
    dur: float  # seconds
    freq: float  # Hz


def score_notes(work: str, qpm: float, seconds: float) -> tuple[list[_Note], int]:
    """Notes (ties merged, grace notes dropped) that start within ``seconds``, and part count."""
    from music21 import chord, converter, corpus

    # Parse the source file directly: no pickle cache is read or written.
    score = converter.parseFile(corpus.getWork(work), forceSource=True, storePickle=False)
    spq = 60.0 / qpm
    parts = list(score.parts) or [score]
    notes: list[_Note] = []
    for index, part in enumerate(parts):
        open_ties: dict[float, _Note] = {}
        for el in part.flatten().notes:
            if el.duration.isGrace or el.quarterLength <= 0:
                continue
            start = float(el.offset) * spq
            if start >= seconds:
                break
            dur = float(el.quarterLength) * spq
            members = list(el.notes) if isinstance(el, chord.Chord) else [el]
            for member in members:
                tie = member.tie or el.tie
                kind = tie.type if tie is not None else None
                key = member.pitch.ps
                held = open_ties.get(key)
                if kind in ("continue", "stop") and held is not None:
                    held.dur = start + dur - held.start
                    if kind == "stop":
                        del open_ties[key]
                    continue
                note = _Note(index, start, dur, float(member.pitch.frequency))
                notes.append(note)
                if kind == "start":
                    open_ties[key] = note
    return notes, len(parts)


def _envelope(n_on: int, n_release: int, attack: float, decay: float, sustain: float) -> np.ndarray:
    """ADSR: linear attack and decay to `sustain`, held, then an exponential-looking release."""
    n_attack = max(1, int(attack * SR))
    n_decay = max(1, int(decay * SR))
    env = np.full(n_on + n_release, sustain)
    env[:n_attack] = np.linspace(0.0, 1.0, n_attack, endpoint=False)[: n_on + n_release]
    end_decay = min(n_attack + n_decay, n_on)
    if end_decay > n_attack:
        env[n_attack:end_decay] = np.linspace(1.0, sustain, n_decay)[: end_decay - n_attack]
    level = env[n_on - 1] if n_on > 0 else 0.0
    env[n_on:] = level * np.linspace(1.0, 0.0, n_release) ** 2
    return env


_TABLE = 4096


def _wavetable_tone(
    freq: float, phase: np.ndarray, amps: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Sum of amps[k-1] * sin(k * phase + random offset), read from a one-period wavetable.

    Harmonics at or above 0.45*SR are dropped (no aliasing). Linear interpolation in a
    4096-point table is exact to ~1e-5 here and ~10x faster than summing sines per sample.
    """
    k = np.arange(1, len(amps) + 1)
    offsets = rng.uniform(0, 2 * np.pi, len(amps))
    keep = k * freq < 0.45 * SR
    grid = np.arange(_TABLE + 1) * (2 * np.pi / _TABLE)
    table = amps[keep] @ np.sin(k[keep, None] * grid[None, :] + offsets[keep, None])
    pos = np.mod(phase / (2 * np.pi), 1.0) * _TABLE
    i0 = pos.astype(np.int64)
    frac = pos - i0
    return table[i0] + frac * (table[i0 + 1] - table[i0])


def _organ(note: _Note, rng: np.random.Generator) -> np.ndarray:
    """Flue-pipe organ: fixed drawbar-like harmonic mix, fast attack, no vibrato."""
    n_on, n_rel = int(note.dur * 0.94 * SR), int(0.08 * SR)
    t = np.arange(n_on + n_rel) / SR
    amps = np.array([1.0, 0.55, 0.3, 0.22, 0.0, 0.12, 0.0, 0.08])
    tone = _wavetable_tone(note.freq, 2 * np.pi * note.freq * t, amps, rng)
    return tone * _envelope(n_on, n_rel, 0.025, 0.05, 0.9)


def _bowed(note: _Note, rng: np.random.Generator) -> np.ndarray:
    """Bowed string: sawtooth-like spectrum, slow bow attack, vibrato that fades in."""
    n_on, n_rel = int(note.dur * 0.97 * SR), int(0.12 * SR)
    t = np.arange(n_on + n_rel) / SR
    rate = 5.5 + rng.uniform(-0.4, 0.4)
    depth = 0.004 * np.clip(t / 0.25, 0.0, 1.0)
    inst = note.freq * (1.0 + depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
    phase = 2 * np.pi * np.cumsum(inst) / SR
    k = np.arange(1, 15)
    amps = 1.0 / k**1.2 * (1.0 + 0.6 * np.exp(-((k - 4.0) ** 2) / 4.0))  # body resonance bump
    # Vibrato raises the top harmonic by <0.5%: the 0.45*SR cut keeps it below Nyquist.
    tone = _wavetable_tone(note.freq, phase, amps, rng)
    return tone * _envelope(n_on, n_rel, 0.07, 0.12, 0.8)


def _plucked(note: _Note, rng: np.random.Generator) -> np.ndarray:
    """Plucked string: pluck-position spectrum, upper harmonics decay faster, a click of noise."""
    n_on, n_rel = int(note.dur * SR), int(0.15 * SR)
    n = n_on + n_rel
    t = np.arange(n) / SR
    k = np.arange(1, 13)
    f_k = note.freq * k * np.sqrt(1.0 + 1e-4 * k**2)  # slight stiffness
    amps = np.abs(np.sin(np.pi * k * 0.17)) / k
    tau = 1.4 * np.sqrt(220.0 / note.freq) / (1.0 + 0.5 * (k - 1))
    keep = f_k < 0.45 * SR
    offsets = rng.uniform(0, 2 * np.pi, len(k))
    partials = np.sin(2 * np.pi * f_k[keep, None] * t[None, :] + offsets[keep, None])
    decay = np.exp(-t[None, :] / tau[keep, None])
    tone = amps[keep] @ (partials * decay)
    click = np.zeros(n)
    n_click = min(n, int(0.004 * SR))
    click[:n_click] = rng.standard_normal(n_click) * np.linspace(0.15, 0.0, n_click)
    env = np.ones(n)
    env[: int(0.002 * SR)] = np.linspace(0.0, 1.0, int(0.002 * SR))
    env[n_on:] = np.linspace(1.0, 0.0, n_rel) ** 2  # finger damps the string at note end
    return (tone + click) * env


VOICES: dict[str, Callable[[_Note, np.random.Generator], np.ndarray]] = {
    "chorale": _organ,
    "quartet": _bowed,
    "folk": _plucked,
}


def render(notes: list[_Note], n_parts: int, genre: str, seconds: float, seed: int) -> np.ndarray:
    """Mix the notes with the genre's voice into float32 mono at SR, levelled and faded out."""
    voice = VOICES[genre]
    rng = np.random.default_rng(seed)
    n = int(round(seconds * SR))
    mix = np.zeros(n + SR)  # room for release tails
    gains = np.linspace(1.0, 0.75, max(n_parts, 1))  # top voice leads
    for note in notes:
        tone = voice(note, rng) * gains[note.part]
        start = int(round(note.start * SR))
        end = min(start + len(tone), len(mix))
        mix[start:end] += tone[: end - start]
    out = mix[:n]
    fade = int(0.3 * SR)
    out[-fade:] *= np.linspace(1.0, 0.0, fade) ** 2
    out[: int(0.005 * SR)] *= np.linspace(0.0, 1.0, int(0.005 * SR))
    rms = np.sqrt(np.mean(out**2))
    if rms == 0:
        raise ValueError("rendered silence")
    out *= 10 ** (TARGET_RMS_DBFS / 20) / rms
    peak = np.abs(out).max()
    if peak > PEAK_LIMIT:
        out *= PEAK_LIMIT / peak
    return out.astype(np.float32)


def _write_audio(samples: np.ndarray, path: Path, ext: str) -> None:
    if ext == "wav":
        sf.write(path, samples, SR, format="WAV", subtype="PCM_16")
    elif ext == "flac":
        sf.write(path, samples, SR, format="FLAC", subtype="PCM_16")
    elif ext == "mp3":  # libsndfile >= 1.1 encodes MP3 via LAME
        sf.write(path, samples, SR, format="MP3", subtype="MPEG_LAYER_III")
    else:
        raise ValueError(f"unknown audio extension {ext!r}")


# --------------------------------------------------------------------------------------------
# build


def _prepare(out_dir: Path) -> None:
    """Create out_dir, or clear a previous demo build; never delete anything else."""
    if out_dir.exists() and any(out_dir.iterdir()):
        sources = out_dir / "SOURCES.md"
        if not (sources.is_file() and sources.read_text(encoding="utf-8").startswith(MARKER)):
            raise FileExistsError(f"{out_dir} is not empty and holds no earlier demo build")
        for sub in ("images", "audio"):
            shutil.rmtree(out_dir / sub, ignore_errors=True)
        sources.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def build_demo(out_dir: Path, seed: int = 0) -> dict:
    """Write the demo images, audio and SOURCES.md under ``out_dir``; return file counts."""
    out_dir = Path(out_dir)
    _prepare(out_dir)
    rows: list[tuple[str, str, str]] = []
    summary: dict[str, dict[str, int]] = {"images": {}, "audio": {}}

    for photo in PHOTOS:
        rel = f"images/{photo.category}/{photo.name}.{photo.ext}"
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        _write_photo(photo, out_dir / rel)
        rows.append((rel, photo.source, photo.licence))
        summary["images"][photo.category] = summary["images"].get(photo.category, 0) + 1

    for piece in PIECES:
        rel = f"audio/{piece.genre}/{piece.name}.{piece.ext}"
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        notes, n_parts = score_notes(piece.work, piece.qpm, piece.seconds)
        # Per-file seed: a file's content does not depend on which other files are built.
        file_seed = zlib.crc32(f"{seed}/{piece.name}".encode())
        samples = render(notes, n_parts, piece.genre, piece.seconds, file_seed)
        _write_audio(samples, out_dir / rel, piece.ext)
        rows.append(
            (
                rel,
                f"music21 corpus `{piece.work}`, first {piece.seconds:g} s at {piece.qpm:g} "
                f"quarter notes/min, rendered by delta_v2a.demo ({piece.genre} voice)",
                "composition in the public domain; encoding distributed with music21 by "
                "permission of its encoders (see music21/corpus/license.txt)",
            )
        )
        summary["audio"][piece.genre] = summary["audio"].get(piece.genre, 0) + 1

    _write_sources(out_dir / "SOURCES.md", rows, seed)
    return summary


def _write_sources(path: Path, rows: list[tuple[str, str, str]], seed: int) -> None:
    lines = [
        MARKER,
        "",
        "Generated by `python -m delta_v2a.demo` (seed "
        f"{seed}) from data shipped inside pip packages: scikit-image {version('scikit-image')}, "
        f"scikit-learn {version('scikit-learn')}, music21 {version('music21')}. "
        "Do not commit; rebuild instead.",
        "",
        "Images are the packages' sample photographs, re-encoded (JPEG quality 95 or PNG). The "
        "licences are those stated in the packages' own documentation (skimage.data docstrings, "
        "sklearn/datasets/images/README.txt). Audio is public-domain music from the music21 "
        "corpus, synthesised here; no recording is used.",
        "",
        "| file | source | licence / credit |",
        "| --- | --- | --- |",
    ]
    lines += [f"| `{rel}` | {source} | {licence} |" for rel, source, licence in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# more songs: the planted Phase 3 world (docs/methods.md §9)

#: semitones and tempo factor of each variant of a piece (variant 0 is the demo's own rendering)
TRANSPOSE = (0, 5, -5, 9, -9, 3, -3, 7)
TEMPO = (1.0, 0.9, 1.1, 0.95, 1.05, 0.85, 1.15, 1.0)


def variant_notes(piece: _Piece, v: int) -> tuple[list[_Note], int]:
    """The piece's notes transposed by ``TRANSPOSE[v]`` semitones and played at ``TEMPO[v]``
    times its tempo (within its length)."""
    notes, parts = score_notes(piece.work, piece.qpm * TEMPO[v], piece.seconds)
    shift = 2.0 ** (TRANSPOSE[v] / 12.0)
    return [dataclasses.replace(n, freq=n.freq * shift) for n in notes], parts


def build_planted_songs(out_dir: Path, songs: int, seed: int = 0) -> dict:
    """The demo media plus variants of its pieces until there are ``songs`` songs.

    Why: the demo's 15 songs leave 3 test files, too few for any verdict over files (the
    smallest sign-test p with n files is 2^-n); Phase 3's planted world needs at least 12, so
    60 songs. A transposition moves the low-band energies the planted audio tower reads as the
    song's nuisance and its spectral balance, so the variants are different songs to it; each
    has its own synthesiser seed. Returns the file counts per genre."""
    if not len(PIECES) <= songs <= len(PIECES) * len(TRANSPOSE):
        raise ValueError(f"songs must be in [{len(PIECES)}, {len(PIECES) * len(TRANSPOSE)}]")
    summary = build_demo(Path(out_dir), seed=seed)
    for k in range(songs - len(PIECES)):
        v, piece = 1 + k // len(PIECES), PIECES[k % len(PIECES)]
        notes, parts = variant_notes(piece, v)
        name = f"{piece.name}_v{v}"
        samples = render(
            notes, parts, piece.genre, piece.seconds, zlib.crc32(f"{seed}/{name}".encode())
        )
        _write_audio(samples, Path(out_dir) / "audio" / piece.genre / f"{name}.wav", "wav")
        summary["audio"][piece.genre] += 1
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m delta_v2a.demo", description="Build the offline demo media."
    )
    parser.add_argument("out_dir", type=Path, help="output folder (e.g. resources/demo)")
    parser.add_argument("--seed", type=int, default=0, help="synthesiser seed (default 0)")
    parser.add_argument(
        "--songs", type=int, help="more songs: the planted Phase 3 world's 60 (default: the 15)"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.songs is not None:
        try:
            summary = build_planted_songs(args.out_dir, args.songs, seed=args.seed)
        except ValueError as err:
            parser.error(str(err))
    else:
        summary = build_demo(args.out_dir, seed=args.seed)
    print(json.dumps(summary, sort_keys=True))
    print(f"demo media written to {args.out_dir} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
