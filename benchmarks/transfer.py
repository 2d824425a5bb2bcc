"""Seconds of ``delta-v2a transfer`` per song: decoder route against ``--exact``.

Builds a small study with the project's own code (extraction, Phase 0 table, the transfer
payload), a decoder file at the configured architecture (random weights: the levels mean
nothing, the cost is real), then times ``transfer.usecase.transfer`` per song, model loads apart.
Every call uses ``force=True`` so that random models that recognise nothing still render.

    .venv/bin/python benchmarks/transfer.py                 # tiny models
    .venv/bin/python benchmarks/transfer.py --full-size     # ViT-L/14 + HTSAT-base, random weights
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from PIL import Image

from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.artifacts.pairs import (
    ChosenPair,
    FileSplit,
    PairRow,
    Pairs,
    PairsData,
    Significance,
)
from delta_v2a.artifacts.phase0 import SensitivityResults, SensitivityRow
from delta_v2a.config import load_config
from delta_v2a.extract import Decoding, study_store
from delta_v2a.media import MediaFile
from delta_v2a.phase0 import sensitivity_table
from delta_v2a.phase3 import artifact
from delta_v2a.phase3 import model as net
from delta_v2a.phase3.paramspace import audio_space_from_config
from delta_v2a.tiny_models import write_tiny_clap, write_tiny_clip
from delta_v2a.transfer.payload import transfer_payload_from_results
from delta_v2a.transfer.usecase import load_setup, transfer

ROOT = Path(__file__).resolve().parents[1]
CONFIG = load_config(ROOT / "workflow/schemas/config.schema.yaml", ROOT / "config/config.yaml")
SR = 48_000


def _media(root: Path, n_photos: int, n_songs: int) -> tuple[list[MediaFile], list[MediaFile]]:
    rng = np.random.default_rng(0)
    photos, songs = [], []
    for k in range(n_photos):
        img = np.kron(rng.random((20, 24, 3)), np.ones((16, 16, 1))) + 0.25 * rng.random(
            (320, 384, 3)
        )
        Image.fromarray((255 * np.clip(img / 1.25, 0, 1)).astype(np.uint8)).save(root / f"p{k}.png")
        photos.append(MediaFile(str(root / f"p{k}.png"), "scenes", "image"))
    t = np.arange(30 * 16_000) / 16_000
    for k in range(n_songs):
        x = sum(np.sin(2 * np.pi * (180 + 30 * k) * h * t) / h for h in range(1, 30))
        x = 0.3 * x / np.abs(x).max() + 0.02 * rng.standard_normal(t.size)
        sf.write(root / f"s{k}.wav", x.astype(np.float32), 16_000)
        songs.append(MediaFile(str(root / f"s{k}.wav"), "tones", "audio"))
    return photos, songs


def build(root: Path, full_size: bool, device: str) -> Path:
    """Models, a 3-photo / 2-song study and a decoder file with its transfer payload."""
    from delta_v2a.models import load_embedder

    clip_dir, clap_dir = root / "clip", root / "clap"
    write_tiny_clip(clip_dir, seed=0, full_size=full_size)
    write_tiny_clap(clap_dir, seed=0, full_size=full_size)
    clip = load_embedder("image", str(clip_dir), device=device)
    clap = load_embedder("audio", str(clap_dir), device=device)
    photos, songs = _media(root, 3, 2)
    image_decoding = Decoding("image", clip.input_size)
    image = study_store(clip, photos, image_decoding, "image", ["blur", "brightness"], CONFIG)
    audio = study_store(clap, songs, Decoding("audio"), "audio", ["lpf", "highshelf"], CONFIG)
    image.save(root / "image.npz")
    audio.save(root / "audio.npz")
    sens = [SensitivityRow.from_json(r) for r in sensitivity_table([image, audio], 0.01)]
    SensitivityResults({}, 0.01, sens).write(root / "sens.json")
    chosen = [("blur", "lpf"), ("brightness", "highshelf")]
    DiscoveryLabels.build(
        {
            "image_effects": ["blur", "brightness"],
            "audio_effects": ["lpf", "highshelf"],
            "alpha": 0.05,
            "correction": "holm",
            "p": [[0.001, 0.5], [0.5, 0.001]],
            "p_adjusted": [[0.001, 0.5], [0.5, 0.001]],
            "chosen_pairs": [{"image_effect": i, "audio_effect": a} for i, a in chosen],
            "sim1": {},
            "sim2": {},
            "sim3": [[0.5, 0.0], [0.0, 0.5]],
            "best_matches": [],
        }
    ).write(root / "labels.json")
    space = audio_space_from_config(CONFIG, ["lpf", "highshelf"], SR, bypass_below=0.02)
    rows = [PairRow(i, a, 0.5, 0.001, True, None) for i, a in chosen]
    Pairs(
        threshold=0.0,
        significance=Significance(available=True, alpha=0.05, note="benchmark", required=True),
        rows=rows,
        chosen=[ChosenPair.of(r) for r in rows],
        level_words=["slightly"],
        seed=0,
        message="2 pairs",
        meta={},
        data=PairsData({}, {}, {}, [], [], space.to_dict(), FileSplit({}, [], [], []), 1),
    ).write(root / "pairs.json")
    inputs = [str(root / n) for n in ("image.npz", "sens.json", "labels.json", "pairs.json")]
    payload = transfer_payload_from_results(*inputs, audio_store=str(root / "audio.npz"))
    p3 = CONFIG["phase3"]
    arch = {
        "kind": "attention",
        "text_dim": clap.dim,
        "audio_dim": clap.dim,
        "n_windows": p3["windows"]["count"],
        "n_params": space.dim,
        **p3["model"],
    }
    torch.manual_seed(0)
    model = root / "decoder_model.pt"
    artifact.save_decoder(
        model,
        {
            "status": "trained",
            "arch": arch,
            "state_dict": net.build_decoder(arch).state_dict(),
            "paramspace": space.to_dict(),
            "level_words": p3["level_words"],
            "templates": p3["descriptions"],
            "pairs": [],
            "apply": _gate(clap, p3),
            "transfer": payload.to_dict(),
            "audio_model": {"name_or_path": str(clap_dir), "dtype": "fp32", "normalize": True},
            "windows": {
                "count": p3["windows"]["count"],
                "hop": int(p3["windows"]["hop_s"] * SR),
                "window": clap.window_samples,
                "sample_rate": SR,
            },
            "preroll": SR,
            "not_science": True,
        },
    )
    # the edit: photo 0 blurred at the strongest level by the workflow's effect
    from delta_v2a.effects import apply_image_effect
    from delta_v2a.media import load_image

    x = load_image(photos[0].path, clip.input_size)
    y = apply_image_effect("blur", x, CONFIG["effects"]["image"]["blur"]["levels"]["high"])
    for name, arr in (("before", x), ("after", y)):
        Image.fromarray((255 * arr).round().astype(np.uint8)).save(root / f"{name}.png")
    return model


def _gate(clap, p3: dict) -> dict:
    """apply's gate holding the first blur template at every level word (as in the CLI tests:
    the decoder route's descriptions are then exact)."""
    from delta_v2a.phase3.dataset import describe

    words = p3["level_words"]
    first = [describe(p3["descriptions"]["blur"][0], w) for w in words]
    return {
        "threshold": 2.0,
        "margin": 3.0,
        "references": [
            {"text": t, "effect": "blur", "level_word": w, "trained": True}
            for t, w in zip(first, words, strict=True)
        ],
        "reference_embeddings": torch.as_tensor(clap.embed_texts(first)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--full-size", action="store_true")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        model = build(root, args.full_size, args.device)
        t1 = time.perf_counter()
        setup = load_setup(str(model), args.device)
        t2 = time.perf_counter()
        print(
            f"study + payload {t1 - t0:.1f} s; model file + both towers loaded in {t2 - t1:.2f} s"
        )
        for exact in (False, True):
            times = []
            for k in range(args.repeat):
                song = str(root / f"s{k % 2}.wav")
                res = transfer(
                    setup,
                    audio=song,
                    out=str(root / "o.wav"),
                    before=str(root / "before.png"),
                    after=str(root / "after.png"),
                    exact=exact,
                    force=True,
                )
                times.append(res["seconds"])
            route = "exact" if exact else "decoder"
            print(
                f"{'full-size' if args.full_size else 'tiny'} {args.device} {route}: "
                f"{np.median(times):.2f} s per 30-s song (median of {args.repeat}: "
                f"{', '.join(f'{t:.2f}' for t in times)}); pairs used {len(res['steps'])}"
            )


if __name__ == "__main__":
    main()
