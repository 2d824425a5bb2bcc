"""Writes the small committed data set under .test/data (rerun only to change it).

Two image categories x 2 smooth random images, two genres x 3 short harmonic clips (2 s, 16 kHz
FLAC; the loader repeat-pads them to CLAP's 10 s window). Deterministic: seeds 0, 1, 2, ...
"""

from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

HERE = Path(__file__).resolve().parent / "data"


def main() -> None:
    seed = 0
    for category in ("city", "sea"):
        for i in range(2):
            rng = np.random.default_rng(seed)
            small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
            img = Image.fromarray(small).resize((64, 48), Image.Resampling.BICUBIC)
            path = HERE / "images" / category / f"img_{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            img.save(path)
            seed += 1
    sr = 16_000
    t = np.arange(2 * sr) / sr
    for genre in ("folk", "jazz"):
        for i in range(3):
            rng = np.random.default_rng(seed)
            f0 = 110 * 2 ** (rng.integers(0, 24) / 12)
            x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12))
            x = 0.2 * x / np.abs(x).max() + 0.01 * rng.standard_normal(t.size)
            path = HERE / "audio" / genre / f"clip_{i}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, x.astype(np.float32), sr, subtype="PCM_16")
            seed += 1


if __name__ == "__main__":
    main()
