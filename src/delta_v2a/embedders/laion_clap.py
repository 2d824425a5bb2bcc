"""The original LAION-CLAP checkpoint (``music_audioset_epoch_15_esc_90.14.pt``: HTSAT-base
audio encoder, RoBERTa text encoder, fusion off, 48 kHz, 10 s), converted to the transformers
``ClapModel`` layout and embedded through the same code as any CLAP.

Why convert, not load: one embedding code path. ``delta-v2a convert-clap CHECKPOINT OUT_DIR``
renames the weights (the fused ``qkv`` split into query, key and value; the projections'
``Sequential`` indices named), writes safetensors, config, processor and a receipt
(``delta_v2a_conversion.json``: the source's sha256 against the published one, said in words
when it differs, and what was dropped). The converted folder's config.json names this family
(``delta_v2a_family: laion_clap``), so loading it needs nothing in the workflow config.

The reference computes its log-mel front end inside the model (torchlibrosa: a periodic Hann
STFT, power, librosa's Slaney mel filters, 10·log10 with amin 1e-10, no top_db). The converter
checks that the checkpoint's own mel filters and STFT kernels are those the transformers
feature extractor uses, so the front end is the same one; the known-answer test
(tests/unit/laion_clap_test.py) shows text and audio embeddings equal to the reference's to
<= 1e-4. What the reference's numpy convenience path adds, and this one leaves out on purpose:
a round trip through int16 (clipping at ±1), which would clip the study's effects.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from delta_v2a.embedders import FAMILY_KEY, register
from delta_v2a.embedders.clap import ClapEmbedder

#: the published sha256 of music_audioset_epoch_15_esc_90.14.pt (LAION-CLAP's music model)
MUSIC_SHA256 = "fae3e9c087f2909c28a09dc31c8dfcdacbc42ba44c70e972b58c1bd1caf6dedd"
MUSIC_FILE = "music_audioset_epoch_15_esc_90.14.pt"
RECEIPT = "delta_v2a_conversion.json"
#: HTSAT-base's audio config in the reference (model_configs/HTSAT-base.json): not stored in
#: the checkpoint, so fixed here and checked against the checkpoint's own mel filters.
AUDIO_CFG = {
    "sample_rate": 48000,
    "clip_samples": 480000,
    "window_size": 1024,
    "hop_size": 480,
    "fmin": 50,
    "fmax": 14000,
}
#: RoBERTa's head width: the checkpoint stores no head count (roberta-base: 768 / 64 = 12)
ROBERTA_HEAD_DIM = 64
#: the reference tokenizes to at most 77 tokens (CLAP_Module.tokenizer)
TEXT_MAX_LENGTH = 77
#: weights the reference has and ClapModel does not: the in-model front end (checked, then
#: dropped), the AudioSet classifier head and the unused MLP "transforms" of training
_DROPPED = (
    r"audio_branch\.spectrogram_extractor\.",
    r"audio_branch\.logmel_extractor\.",
    r"audio_branch\.(tscam_conv|head)\.",
    r"(text|audio)_transform\.",
    r"text_branch\.embeddings\.position_ids$",
    r"\.attn_mask$",  # shifted-window masks: ClapModel computes them
    r"text_branch\.pooler\.dense_unused",
)
_RENAMES = (
    (r"^text_branch\.", "text_model."),
    (r"^audio_branch\.", "audio_model.audio_encoder."),
    (r"\.bn0\.", ".batch_norm."),
    (r"\.norm1\.", ".layernorm_before."),
    (r"\.norm2\.", ".layernorm_after."),
    (r"\.attn\.relative_position_", ".attention.self.relative_position_"),
    (r"\.attn\.proj\.", ".attention.output.dense."),
    (r"\.mlp\.fc1\.", ".intermediate.dense."),
    (r"\.mlp\.fc2\.", ".output.dense."),
    (r"^(text|audio)_projection\.0\.", r"\1_projection.linear1."),
    (r"^(text|audio)_projection\.2\.", r"\1_projection.linear2."),
)


@register
class LaionClapEmbedder(ClapEmbedder):
    """A converted original LAION-CLAP checkpoint: CLAP's code path, its own family name so
    provenance says which checkpoint layout it came from."""

    family = "laion_clap"
    #: loads model_type clap, but claims only folders whose config.json names this family
    claims_model_type = False

    @staticmethod
    def write_tiny(out_dir: Path, seed: int = 0) -> Path:
        """A tiny random checkpoint in the ORIGINAL layout, converted like the real one."""
        from delta_v2a.tiny_models import write_tiny_laion_clap

        return write_tiny_laion_clap(Path(out_dir), seed)


# --------------------------------------------------------------------------- reading


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_checkpoint(path: Path, sha256: str, trust_pickle: bool = False) -> dict[str, Any]:
    """The checkpoint's state dict, ``module.`` prefixes stripped.

    Why the care: the published checkpoints are full pickles (numpy scalars beside the
    weights), which torch reads only with ``weights_only=False``, i.e. running code from the
    file. That is done for the published music checkpoint (its sha256 is known) or when the
    user says they trust the file; anything else is read as weights only.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch's UnpicklingError, and older pickle protocols' errors
        if not (trust_pickle or sha256 == MUSIC_SHA256):
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(
                f"{path}: cannot be read as plain weights ({first[:120]}); if you trust the "
                "file, pass --trust-pickle"
            ) from None
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, Mapping) else None
    if not isinstance(state, Mapping) or not state:
        raise ValueError(f"{path}: not a LAION-CLAP checkpoint (no state_dict of tensors)")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}


# --------------------------------------------------------------------------- conversion


def _count(state: Mapping[str, Any], pattern: str) -> int:
    found = {m.group(1) for k in state if (m := re.match(pattern, k))}
    return len(found)


def _audio_config(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """ClapAudioConfig values read off HTSAT's weight shapes."""
    pre = "audio_branch."
    n_layers = _count(state, rf"{pre}layers\.(\d+)\.")
    depths = [_count(state, rf"{pre}layers\.{i}\.blocks\.(\d+)\.") for i in range(n_layers)]
    heads = [
        int(state[f"{pre}layers.{i}.blocks.0.attn.relative_position_bias_table"].shape[1])
        for i in range(n_layers)
    ]
    window = int(
        round(state[f"{pre}layers.0.blocks.0.attn.relative_position_index"].shape[0] ** 0.5)
    )
    proj = state[f"{pre}patch_embed.proj.weight"]
    return {
        "spec_size": 256,  # HTSAT's fixed spectrogram image side (every reference model)
        "num_mel_bins": int(state[f"{pre}bn0.weight"].shape[0]),
        "window_size": window,
        "patch_size": int(proj.shape[-1]),
        "patch_stride": [int(proj.shape[-2]), int(proj.shape[-1])],
        "patch_embeds_hidden_size": int(proj.shape[0]),
        "depths": depths,
        "num_attention_heads": heads,
        "hidden_size": int(state[f"{pre}norm.weight"].shape[0]),
        "enable_fusion": False,
        "num_classes": int(state.get(f"{pre}head.weight", torch.zeros(527, 1)).shape[0]),
    }


def _text_config(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """ClapTextConfig (RoBERTa) values read off the text branch's weight shapes."""
    pre = "text_branch."
    words = state[f"{pre}embeddings.word_embeddings.weight"]
    hidden = int(words.shape[1])
    return {
        "vocab_size": int(words.shape[0]),
        "hidden_size": hidden,
        "num_hidden_layers": _count(state, rf"{pre}encoder\.layer\.(\d+)\."),
        "num_attention_heads": max(1, hidden // ROBERTA_HEAD_DIM),
        "intermediate_size": int(state[f"{pre}encoder.layer.0.intermediate.dense.weight"].shape[0]),
        "max_position_embeddings": int(
            state[f"{pre}embeddings.position_embeddings.weight"].shape[0]
        ),
        "type_vocab_size": int(state[f"{pre}embeddings.token_type_embeddings.weight"].shape[0]),
        "layer_norm_eps": 1e-5,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
    }


def _check_layout(state: Mapping[str, Any], path: Path) -> None:
    """Fusion checkpoints and non-HTSAT/non-RoBERTa towers are refused, with the reason."""
    if any("fusion_model" in k or "mel_conv2d" in k for k in state):
        raise ValueError(f"{path}: a fusion checkpoint; convert-clap takes fusion-off ones")
    for key in ("audio_branch.bn0.weight", "text_branch.embeddings.word_embeddings.weight"):
        if key not in state:
            raise ValueError(f"{path}: not an HTSAT + RoBERTa LAION-CLAP checkpoint (no {key})")


def convert_state_dict(
    state: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Original names -> ClapModel names; returns the new state dict and the dropped keys."""
    out: dict[str, torch.Tensor] = {}
    dropped = []
    for key, value in state.items():
        if any(re.search(p, key) for p in _DROPPED):
            dropped.append(key)
            continue
        new = key
        for pattern, repl in _RENAMES:
            new = re.sub(pattern, repl, new)
        if ".attn.qkv." in new:
            for part, chunk in zip(("query", "key", "value"), value.chunk(3, dim=0), strict=True):
                out[new.replace(".attn.qkv.", f".attention.self.{part}.")] = chunk.clone()
            continue
        out[new] = value
    return out, sorted(dropped)


def _front_end_check(state: Mapping[str, torch.Tensor], extractor: Any) -> dict[str, float]:
    """Largest difference between the checkpoint's own mel filters and STFT kernels and those
    the transformers feature extractor applies (Slaney filters, periodic Hann window)."""
    figures = {}
    mel = state.get("audio_branch.logmel_extractor.melW")
    if mel is not None:
        ours = np.asarray(extractor.mel_filters_slaney, dtype=np.float64)
        figures["mel_filters_max_abs_diff"] = float(np.abs(mel.double().numpy() - ours).max())
    real = state.get("audio_branch.spectrogram_extractor.stft.conv_real.weight")
    if real is not None:
        n = real.shape[-1]
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
        k = np.arange(real.shape[0])[:, None]
        dft = np.cos(2 * np.pi * k * np.arange(n)[None, :] / n) * window
        figures["stft_max_abs_diff"] = float(np.abs(real[:, 0, :].double().numpy() - dft).max())
    return figures


def convert(
    checkpoint: Path,
    out_dir: Path,
    tokenizer: str | Path = "FacebookAI/roberta-base",
    trust_pickle: bool = False,
    expected_sha256: str = MUSIC_SHA256,
) -> dict[str, Any]:
    """Write ``out_dir`` (a ClapModel folder of this family) from an original checkpoint;
    returns the receipt, which is also written beside the weights."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: no such checkpoint file")
    sha = sha256_of(checkpoint)
    state = read_checkpoint(checkpoint, sha, trust_pickle)
    _check_layout(state, checkpoint)
    audio_cfg, text_cfg = _audio_config(state), _text_config(state)
    projection = int(state["text_projection.2.weight"].shape[0])
    config = ClapConfig(text_config=text_cfg, audio_config=audio_cfg, projection_dim=projection)
    setattr(config, FAMILY_KEY, LaionClapEmbedder.family)
    extractor = ClapFeatureExtractor(
        feature_size=audio_cfg["num_mel_bins"],
        sampling_rate=AUDIO_CFG["sample_rate"],
        hop_length=AUDIO_CFG["hop_size"],
        max_length_s=AUDIO_CFG["clip_samples"] // AUDIO_CFG["sample_rate"],
        fft_window_size=AUDIO_CFG["window_size"],
        frequency_min=AUDIO_CFG["fmin"],
        frequency_max=AUDIO_CFG["fmax"],
        top_db=None,
        truncation="rand_trunc",
        padding="repeatpad",
    )
    front = _front_end_check(state, extractor)
    if any(v > 1e-5 for v in front.values()):
        raise ValueError(
            f"{checkpoint}: its mel front end is not HTSAT-base's ({front}); this converter "
            "knows the 48 kHz, 1024-point, hop 480, 50-14000 Hz, 64-band one only"
        )
    converted, dropped = convert_state_dict(state)
    model = ClapModel(config).eval()
    missing, unexpected = model.load_state_dict(converted, strict=False)
    missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
    if missing or unexpected:
        raise ValueError(
            f"{checkpoint}: weights do not fit ClapModel (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}{' ...' if len(missing) + len(unexpected) > 3 else ''})"
        )
    processor = ClapProcessor(feature_extractor=extractor, tokenizer=_tokenizer(tokenizer))
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    receipt = _receipt(checkpoint, sha, expected_sha256, front, dropped)
    (out_dir / RECEIPT).write_text(json.dumps(receipt, indent=2) + "\n")
    return receipt


def _tokenizer(source: str | Path) -> Any:
    """RoBERTa's tokenizer (the reference's), truncating at 77 tokens as the reference does."""
    from transformers import AutoTokenizer, PreTrainedTokenizerBase

    if isinstance(source, PreTrainedTokenizerBase):
        tok = source
    else:
        try:
            tok = AutoTokenizer.from_pretrained(str(source))
        except OSError as err:
            raise ValueError(
                f"cannot load the RoBERTa tokenizer {str(source)!r} ({str(err).splitlines()[0]}); "
                "pass --tokenizer with a folder holding roberta-base's tokenizer files"
            ) from None
    tok.model_max_length = TEXT_MAX_LENGTH
    return tok


def _receipt(
    checkpoint: Path, sha: str, expected: str, front: dict[str, float], dropped: list[str]
) -> dict[str, Any]:
    matches = sha == expected
    return {
        "source": str(checkpoint.resolve()),
        "source_name": checkpoint.name,
        "sha256": sha,
        "expected_sha256": expected,
        "sha256_matches": matches,
        "sha256_note": (
            "the published checkpoint"
            if matches
            else f"NOT the published {MUSIC_FILE}: sha256 {sha} differs from {expected}"
        ),
        "front_end_check": front,
        "dropped": dropped,
        "family": LaionClapEmbedder.family,
    }
