"""CLAP through transformers (``model_type: clap``, e.g. laion/larger_clap_general): audio
and text towers.

Audio arrives as exactly one model window (10 s at 48 kHz). Feature extraction uses
``truncation="rand_trunc"`` on clips of exactly the window length, so no random crop happens;
fusion is never used, because the feature extractor then marks a random batch item as
"longer" and results would depend on the batch. For fusion checkpoints this means the global
branch only, which is what those models do for clips that are not longer than the window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import ClapModel

from delta_v2a.embedders import register
from delta_v2a.embedders.base import (
    HFEmbedder,
    ModelInfo,
    _finite_float32,
    _text_max_length,
    to_device,
)
from delta_v2a.tiny_models import write_tiny_clap


@register
class ClapEmbedder(HFEmbedder):
    """CLAP audio and text embeddings for clips of exactly one model window."""

    family = "clap"
    model_types = ("clap",)
    modalities = ("audio",)
    model_cls = ClapModel
    write_tiny = staticmethod(write_tiny_clap)

    def __init__(self, model: ClapModel, processor: Any, info: ModelInfo, normalize: bool) -> None:
        super().__init__(model, processor, info, normalize)
        self.feature_extractor = processor.feature_extractor
        self.sampling_rate: int = int(self.feature_extractor.sampling_rate)
        self.window_samples: int = int(self.feature_extractor.nb_max_samples)
        self.info = dataclasses.replace(
            info, sampling_rate=self.sampling_rate, window_samples=self.window_samples
        )
        text_cfg = model.config.text_config
        # RoBERTa positions start after the padding index.
        positions = text_cfg.max_position_embeddings - (text_cfg.pad_token_id or 0) - 1
        self._text_max_length = _text_max_length(self.tokenizer, positions)

    def _check_clip(self, i: int, clip: np.ndarray) -> np.ndarray:
        arr = np.asarray(clip)
        if arr.ndim != 1:
            raise ValueError(f"clip {i}: expected a 1-D mono waveform, got shape {arr.shape}")
        if arr.shape[0] != self.window_samples:
            raise ValueError(
                f"clip {i}: expected exactly {self.window_samples} samples "
                f"({self.window_samples / self.sampling_rate:g} s at {self.sampling_rate} Hz), "
                f"got {arr.shape[0]}"
            )
        return _finite_float32(f"clip {i}", arr, "a float waveform")

    def preprocess(self, clips: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        """Log-mel features and is_longer flags, without random cropping or fusion."""
        arrays = [self._check_clip(i, c) for i, c in enumerate(clips)]
        out = self.feature_extractor(
            arrays,
            sampling_rate=self.sampling_rate,
            truncation="rand_trunc",  # a no-op on clips of exactly the window length
            padding="repeatpad",
            return_tensors="pt",
        )
        return {"input_features": out["input_features"], "is_longer": out["is_longer"]}

    def prepare(self, item: np.ndarray, index: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """One clip's (input_features, is_longer); errors name the clip by ``index``."""
        self._check_clip(index, item)
        feats = self.preprocess([item])
        return feats["input_features"][0], feats["is_longer"][0]

    def forward(self, prepared: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        features = torch.stack([p[0] for p in prepared])
        is_longer = torch.stack([p[1] for p in prepared])
        out = self.model.get_audio_features(
            input_features=to_device(features, self._device, self._dtype),
            is_longer=to_device(is_longer, self._device),
        )
        return out.pooler_output

    def embed_audio(self, clips: Sequence[np.ndarray], batch_size: int = 8) -> np.ndarray:
        """(n, dim) float32 audio embeddings of exactly-one-window clips."""
        return self.embed(clips, batch_size)
