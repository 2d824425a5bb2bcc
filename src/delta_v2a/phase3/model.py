"""Phase 3 decoder network: text attends over the audio window sequence."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

KINDS = ("attention", "concat", "text")


# --------------------------------------------------------------------------- model


class DecoderNet(nn.Module):
    """Text condition (B, Dt) × window sequence (B, K, Da) -> parameter vector (B, P).

    ``attention``: the projected text embedding is the single query of a multi-head
    cross-attention over the projected windows (plus a learned position per window); the
    attended vector is added to the query (residual), normalised, and fed to the MLP head.
    ``concat``: the ablation - text embedding and mean window embedding concatenated,
    projected, normalised, same head. ``text``: the text-only baseline - the text embedding
    alone, projected, normalised, same head (the audio argument is ignored).
    """

    def __init__(
        self,
        *,
        kind: str,
        text_dim: int,
        audio_dim: int,
        n_windows: int,
        n_params: int,
        d_model: int,
        heads: int,
        hidden: int,
        dropout: float,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"decoder kind must be one of {KINDS}, got {kind!r}")
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        self.kind = kind
        if kind == "attention":
            self.query = nn.Linear(text_dim, d_model)
            self.key_value = nn.Linear(audio_dim, d_model)
            self.position = nn.Parameter(torch.zeros(n_windows, d_model))
            self.attention = nn.MultiheadAttention(
                d_model, heads, dropout=dropout, batch_first=True
            )
        elif kind == "concat":
            self.project = nn.Linear(text_dim + audio_dim, d_model)
        else:
            self.project = nn.Linear(text_dim, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Sequential(
            nn.Linear(d_model, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_params),
        )

    def forward(self, text: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        if self.kind == "attention":
            q = self.query(text).unsqueeze(1)
            kv = self.key_value(audio) + self.position
            attended, _ = self.attention(q, kv, kv, need_weights=False)
            h = self.norm(q + attended).squeeze(1)
        elif self.kind == "concat":
            h = self.norm(self.project(torch.cat([text, audio.mean(dim=1)], dim=-1)))
        else:
            h = self.norm(self.project(text))
        return self.head(h)


def build_decoder(arch: Mapping[str, Any]) -> DecoderNet:
    return DecoderNet(**dict(arch))


@torch.no_grad()
def predict(
    model: nn.Module, text: np.ndarray, audio: np.ndarray, device: str | torch.device = "cpu"
) -> np.ndarray:
    """(N, P) raw predictions (not clipped) for rows of text (N, Dt) and windows (N, K, Da)."""
    model.eval()
    device = torch.device(device)
    out = model(
        torch.as_tensor(text, dtype=torch.float32, device=device),
        torch.as_tensor(audio, dtype=torch.float32, device=device),
    )
    return out.to("cpu").numpy().astype(np.float32)


def model_with_state(
    arch: Mapping[str, Any], state: Mapping[str, torch.Tensor], device: str | torch.device = "cpu"
) -> DecoderNet:
    model = build_decoder(arch)
    model.load_state_dict(dict(state))
    return model.to(device).eval()
