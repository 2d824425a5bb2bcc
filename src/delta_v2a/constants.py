"""The study's physical constants, each written once: the rates and sizes the two embedding
models (CLAP, CLIP) work at. Everything else (the decoder's paramspace, the demo's media, the
planted and tiny stand-in models, the config checks) takes them from here."""

from __future__ import annotations

#: The two sides of the study, in the order every table and loop uses.
MODALITIES = ("image", "audio")

#: CLAP's sampling rate (Hz): every audio file is decoded and resampled to it.
SAMPLE_RATE = 48_000
#: Seconds of audio in one CLAP window (one embedding).
WINDOW_SECONDS = 10
#: Samples in one CLAP window.
WINDOW_SAMPLES = WINDOW_SECONDS * SAMPLE_RATE
#: CLIP's input side (pixels): each image is resized to it before embedding.
IMAGE_SIZE = 224
