"""Tiny, randomly initialised CLIP and CLAP checkpoints that need no network.

Why: tests and dry runs of the workflow must exercise the real loading and embedding code
(`transformers` classes, processors, `from_pretrained`) on a machine that cannot download the
real checkpoints. These writers build the real `CLIPModel` / `ClapModel` classes with tiny
hidden sizes but the real projection dimensions and the real input geometry (224 px images,
10 s of 48 kHz audio), plus an offline byte-level tokenizer, and save everything with
`save_pretrained` so `from_pretrained(out_dir)` works with `HF_HUB_OFFLINE=1`.

The weights are random: any number computed with them is a plumbing check, not science. Each
directory carries a marker file (`delta_v2a_tiny.json`) so downstream code can say so.

CLI: ``python -m delta_v2a.tiny_models OUT_ROOT`` writes ``OUT_ROOT/tiny-clip``,
``OUT_ROOT/tiny-clap``, ``OUT_ROOT/tiny-siglip`` and ``OUT_ROOT/tiny-laion-clap`` (converted from
a tiny checkpoint in the original LAION-CLAP layout, ``OUT_ROOT/tiny-laion-clap.pt``).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch
from transformers import (
    ClapConfig,
    ClapFeatureExtractor,
    ClapModel,
    ClapProcessor,
    CLIPConfig,
    CLIPImageProcessorPil,
    CLIPModel,
    CLIPProcessor,
    CLIPTokenizer,
    RobertaTokenizer,
    SiglipConfig,
    SiglipImageProcessorPil,
    SiglipModel,
    SiglipProcessor,
)
from transformers.convert_slow_tokenizer import bytes_to_unicode

from delta_v2a.constants import IMAGE_SIZE, SAMPLE_RATE, WINDOW_SECONDS

__all__ = [
    "TINY_MARKER",
    "TINY_NOTE",
    "build_tiny_clap",
    "build_tiny_clip",
    "build_tiny_siglip",
    "tiny_laion_clap_checkpoint",
    "write_tiny_clip",
    "write_tiny_clap",
    "write_tiny_laion_clap",
    "write_tiny_siglip",
    "main",
]

from delta_v2a.embedders.base import TINY_MARKER, TINY_NOTE  # noqa: E402

# Real embedding sizes of the checkpoints the tiny models stand in for
# (openai/clip-vit-large-patch14: 768; laion/larger_clap_music: 512).
CLIP_PROJECTION_DIM = 768
CLAP_PROJECTION_DIM = 512

# OpenAI CLIP normalisation constants (as in the real preprocessor_config.json).
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# Measured collapse fixes (mean pairwise cosine of unrelated inputs, seeds 0-7 / 0-3):
# * CLAP text: with the library's default init (factor 1.0) the tiny random RoBERTa's pooled CLS
#   output ignores the prompt (cosine 0.999 for 8 unrelated prompts, 1 or 2 layers). Init factor
#   6 gives 0.56-0.76 with 2 layers (factor 4: 0.61-0.89).
# * CLAP audio: the HTSAT input BatchNorm starts as the identity, so log-mel values in dB
#   (-100..+20) reach the patch embedding unscaled and 8 very different clips embed at cosine
#   0.99. Setting its running statistics to the dB range (mean -50, std 30), as a trained model's
#   would roughly be, gives 0.57-0.62. Weights are untouched; this is an init choice only.
CLAP_TEXT_INIT_FACTOR = 6.0
#: SigLIP pads text to its full length (64 tokens), as it was trained
SIGLIP_TEXT_LENGTH = 64
CLAP_MEL_DB_MEAN = -50.0
CLAP_MEL_DB_STD = 30.0


def _byte_chars() -> list[str]:
    """The 256 printable stand-ins GPT-2/CLIP/RoBERTa byte-level BPE uses for raw bytes."""
    return list(bytes_to_unicode().values())


def _clip_tokenizer() -> CLIPTokenizer:
    """Byte-level CLIP tokenizer: 256 bytes, 256 word-final bytes, 2 specials; no merges."""
    chars = _byte_chars()
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _roberta_tokenizer() -> RobertaTokenizer:
    """Byte-level RoBERTa tokenizer with the usual special-token ids (<s>=0, <pad>=1, </s>=2)."""
    tokens = ["<s>", "<pad>", "</s>", "<unk>"] + _byte_chars() + ["<mask>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    return RobertaTokenizer(vocab=vocab, merges=[], model_max_length=512)


def _write_marker(out_dir: Path, seed: int, kind: str) -> None:
    marker = {"tiny": True, "note": TINY_NOTE, "seed": seed, "kind": kind}
    (out_dir / TINY_MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def _seeded_init(model_cls, config, seed: int):
    """Build `model_cls(config)` under a forked RNG so the caller's global RNG is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config)
    return model.eval()


# Full-size geometry (random weights, same cost as the real checkpoints) for benchmarks:
# CLIP ViT-L/14 (428 M parameters) and CLAP HTSAT-base + RoBERTa-base (about 194 M).
FULL_CLIP = {
    "text": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
    },
    "vision": {
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "patch_size": 14,
    },
}
FULL_CLAP = {
    "text": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
    },
    "audio": {
        "patch_embeds_hidden_size": 128,
        "depths": [2, 2, 12, 2],
        "num_attention_heads": [4, 8, 16, 32],
        "hidden_size": 1024,
    },
}


#: Width and depth of every tiny transformer tower (CLIP text and vision, CLAP text).
_TINY_LAYERS = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
}


def build_tiny_clip(seed: int = 0, full_size: bool = False) -> tuple[CLIPModel, CLIPProcessor]:
    """Tiny CLIP (ViT-B/32 geometry at 224 px, width 32) with a 768-d projection; with
    ``full_size`` the real ViT-L/14 geometry (random weights, for speed measurements)."""
    tokenizer = _clip_tokenizer()
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            **_TINY_LAYERS,
            "max_position_embeddings": 77,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            **(FULL_CLIP["text"] if full_size else {}),
        },
        vision_config={
            **_TINY_LAYERS,
            "image_size": IMAGE_SIZE,
            "patch_size": 32,
            **(FULL_CLIP["vision"] if full_size else {}),
        },
        projection_dim=CLIP_PROJECTION_DIM,
    )
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return _seeded_init(CLIPModel, config, seed), processor


def build_tiny_clap(
    seed: int = 0, full_size: bool = False, text_width: int | None = None
) -> tuple[ClapModel, ClapProcessor]:
    """Tiny CLAP (HTSAT geometry of laion/larger_clap_music, width 32) with a 512-d projection;
    with ``full_size`` the real HTSAT-base + RoBERTa-base sizes (random weights)."""
    tokenizer = _roberta_tokenizer()
    config = ClapConfig(
        text_config={
            "vocab_size": len(tokenizer),
            **_TINY_LAYERS,
            "max_position_embeddings": 514,
            "type_vocab_size": 1,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "initializer_factor": CLAP_TEXT_INIT_FACTOR,
            **({"hidden_size": text_width, "layer_norm_eps": 1e-5} if text_width else {}),
            **(FULL_CLAP["text"] if full_size else {}),
        },
        audio_config={
            # 64 mel bins, 256x256 spectrogram image, window 8, patch 4: fits 1001 frames (10 s).
            "spec_size": 256,
            "num_mel_bins": 64,
            "window_size": 8,
            "patch_size": 4,
            "patch_stride": [4, 4],
            "patch_embeds_hidden_size": 16,
            "depths": [1, 1],
            "num_attention_heads": [2, 2],
            "hidden_size": 32,  # = patch_embeds_hidden_size * 2 ** (len(depths) - 1)
            "enable_fusion": False,
            **(FULL_CLAP["audio"] if full_size else {}),
        },
        projection_dim=CLAP_PROJECTION_DIM,
    )
    feature_extractor = ClapFeatureExtractor(
        feature_size=64,
        sampling_rate=SAMPLE_RATE,
        hop_length=480,
        max_length_s=WINDOW_SECONDS,
        fft_window_size=1024,
        frequency_min=50,
        frequency_max=14000,
        top_db=None,
        truncation="rand_trunc",
        padding="repeatpad",
    )
    processor = ClapProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)
    model = _seeded_init(ClapModel, config, seed)
    batch_norm = model.audio_model.audio_encoder.batch_norm
    with torch.no_grad():
        batch_norm.running_mean.fill_(CLAP_MEL_DB_MEAN)
        batch_norm.running_var.fill_(CLAP_MEL_DB_STD**2)
    return model, processor


def _save(model, processor, out_dir: Path, seed: int, kind: str) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    _write_marker(out_dir, seed, kind)
    share_readable(out_dir)
    return out_dir


def share_readable(out_dir: Path) -> None:
    """Every file 0644 and folder 0755: safetensors writes its weights 0600, which another user
    (a shared lab install, a service account's job) could not load."""
    for item in [out_dir, *out_dir.rglob("*")]:
        os.chmod(item, 0o755 if item.is_dir() else 0o644)


def write_tiny_clip(out_dir: Path, seed: int = 0, full_size: bool = False) -> Path:
    """Write a tiny random CLIP + offline processor to `out_dir`; same seed, same weights."""
    model, processor = build_tiny_clip(seed, full_size)
    return _save(model, processor, out_dir, seed, "clip")


def write_tiny_clap(out_dir: Path, seed: int = 0, full_size: bool = False) -> Path:
    """Write a tiny random CLAP + offline processor to `out_dir`; same seed, same weights."""
    model, processor = build_tiny_clap(seed, full_size)
    return _save(model, processor, out_dir, seed, "clap")


# --------------------------------------------------------------------------- SigLIP


def build_tiny_siglip(seed: int = 0) -> tuple[SiglipModel, SiglipProcessor]:
    """Tiny SigLIP (224 px, patch 32, width 32; text padded to 64 tokens as SigLIP is) with
    the byte-level CLIP tokenizer standing in for SigLIP's SentencePiece one."""
    tokenizer = _clip_tokenizer()
    tokenizer.model_max_length = SIGLIP_TEXT_LENGTH
    config = SiglipConfig(
        text_config={
            "vocab_size": len(tokenizer),
            **_TINY_LAYERS,
            "max_position_embeddings": SIGLIP_TEXT_LENGTH,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        vision_config={**_TINY_LAYERS, "image_size": 224, "patch_size": 32},
    )
    image_processor = SiglipImageProcessorPil(
        size={"height": 224, "width": 224}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )
    processor = SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return _seeded_init(SiglipModel, config, seed), processor


def write_tiny_siglip(out_dir: Path, seed: int = 0) -> Path:
    """Write a tiny random SigLIP + offline processor to ``out_dir``."""
    model, processor = build_tiny_siglip(seed)
    return _save(model, processor, out_dir, seed, "siglip")


# --------------------------------------------------------------------------- LAION-CLAP


def tiny_laion_clap_checkpoint(seed: int = 0, full_size: bool = False) -> dict[str, torch.Tensor]:
    """A tiny random state dict in the ORIGINAL LAION-CLAP layout (``module.`` names, fused
    ``qkv``, ``Sequential`` projections, the in-model mel front end), made by writing a tiny
    ClapModel's weights back under the original names. RoBERTa width 128 (2 heads of 64, the
    head width the converter assumes); with ``full_size`` HTSAT-base + RoBERTa-base sizes."""
    from delta_v2a.embedders import laion_clap

    model, processor = build_tiny_clap(seed, full_size, text_width=None if full_size else 128)
    ours = {k: v for k, v in model.state_dict().items() if not k.endswith("_ids")}
    state = _to_original(ours)
    extractor = processor.feature_extractor
    n = extractor.fft_window_size
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    angle = 2 * np.pi * np.arange(n // 2 + 1)[:, None] * np.arange(n)[None, :] / n
    pre = "audio_branch.spectrogram_extractor.stft."
    state[pre + "conv_real.weight"] = torch.tensor(np.cos(angle) * window).float()[:, None]
    state[pre + "conv_imag.weight"] = torch.tensor(-np.sin(angle) * window).float()[:, None]
    state["audio_branch.logmel_extractor.melW"] = torch.tensor(extractor.mel_filters_slaney).float()
    assert set(laion_clap.convert_state_dict(state)[0]) == set(ours)
    return {f"module.{k}": v for k, v in state.items()}


#: the converter's audio renames, undone (applied to audio keys only: RoBERTa keeps its names)
_AUDIO_UNDO = (
    (r"^audio_model\.audio_encoder\.", "audio_branch."),
    (r"\.batch_norm\.", ".bn0."),
    (r"\.layernorm_before\.", ".norm1."),
    (r"\.layernorm_after\.", ".norm2."),
    (r"\.attention\.self\.relative_position_", ".attn.relative_position_"),
    (r"\.attention\.output\.dense\.", ".attn.proj."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
)


def _to_original(ours: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ClapModel names -> the original's (the converter's renames undone, q/k/v fused)."""
    import re

    out: dict[str, torch.Tensor] = {}
    for key, value in ours.items():
        if key.startswith("text_model."):
            out["text_branch." + key[len("text_model.") :]] = value.clone()
        elif key.startswith(("text_projection.", "audio_projection.")):
            key = key.replace(".linear1.", ".0.").replace(".linear2.", ".2.")
            out[key] = value.clone()
        elif re.search(r"\.attention\.self\.(key|value)\.", key):
            continue  # fused with the query below
        else:
            if ".attention.self.query." in key:
                parts = [ours[key.replace(".query.", f".{p}.")] for p in ("query", "key", "value")]
                key, value = key.replace(".attention.self.query.", ".attn.qkv."), torch.cat(parts)
            for pattern, repl in _AUDIO_UNDO:
                key = re.sub(pattern, repl, key)
            out[key] = value.clone()
    return out


def write_tiny_laion_clap(out_dir: Path, seed: int = 0, full_size: bool = False) -> Path:
    """``out_dir``.pt: a tiny checkpoint in the original layout; ``out_dir``: it converted by
    the project's converter (as ``delta-v2a convert-clap`` does), marked tiny."""
    from delta_v2a.embedders import laion_clap

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    original = out_dir.with_name(out_dir.name + ".pt")
    torch.save({"state_dict": tiny_laion_clap_checkpoint(seed, full_size), "epoch": 0}, original)
    laion_clap.convert(original, out_dir, tokenizer=_roberta_tokenizer())
    _write_marker(out_dir, seed, "laion_clap")
    share_readable(out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m delta_v2a.tiny_models",
        description="Write tiny random models of every family for offline tests (not science).",
    )
    parser.add_argument(
        "out_root",
        type=Path,
        help="writes OUT_ROOT/tiny-clip, tiny-clap, tiny-siglip and tiny-laion-clap",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--full-size",
        action="store_true",
        help="write random-clip-vit-l14 and random-clap-htsat-base instead: the real sizes "
        "(2.3 GB), for speed measurements only",
    )
    args = parser.parse_args(argv)
    names = (
        ("random-clip-vit-l14", "random-clap-htsat-base")
        if args.full_size
        else ("tiny-clip", "tiny-clap")
    )
    for path in (
        write_tiny_clip(args.out_root / names[0], seed=args.seed, full_size=args.full_size),
        write_tiny_clap(args.out_root / names[1], seed=args.seed, full_size=args.full_size),
    ):
        print(path)
    if not args.full_size:
        print(write_tiny_siglip(args.out_root / "tiny-siglip", seed=args.seed))
        print(write_tiny_laion_clap(args.out_root / "tiny-laion-clap", seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
