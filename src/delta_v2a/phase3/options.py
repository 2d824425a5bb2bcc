"""The options Phase 3's science takes: the decoder's shape and its training budget.

The science owns these types and the workflow's settings compose them (delta_v2a.settings),
so there is one type per concept and no default beside the schema's: every field is given,
by the config (workflow/schemas/config.schema.yaml) or by the caller. Torch-free, so the
workflow reads them at parse time without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    """The decoder's shape (delta_v2a.phase3.model.build_decoder): config ``phase3.model``."""

    d_model: int
    heads: int
    hidden: int
    dropout: float


@dataclass(frozen=True)
class TrainSettings:
    """One training run's budget and seed (delta_v2a.phase3.train.train_decoder): config
    ``phase3.{epochs,batch_size,lr,weight_decay}``; the experiment runs once per
    ``phase3.seeds`` entry with that seed."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int
