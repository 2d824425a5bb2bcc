"""Delta V2A: embedding deltas of CLIP (images) and CLAP (audio) under controlled effects."""

__version__ = "0.1.0"
