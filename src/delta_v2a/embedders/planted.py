"""The planted world as a model family: stand-in towers whose answer is built in.

The math lives in delta_v2a.planted; this module only registers it. Any model name works
(configs use ``planted:image`` and ``planted:audio``): the family is chosen by
``models.family: planted``, the tower by the modality.
"""

from __future__ import annotations

from typing import Any

from delta_v2a.constants import MODALITIES
from delta_v2a.embedders import register


@register
class PlantedFamily:
    """Loader of the planted towers; device, dtype and revision are accepted and ignored
    (numpy on the CPU, float64 inside, float32 out); ``normalize`` is honoured."""

    family = "planted"
    model_types: tuple[str, ...] = ()
    modalities = MODALITIES
    write_tiny = None  # built from code: nothing to write

    @classmethod
    def open(cls, modality: str, name_or_path: str, normalize: bool = True, **_: Any) -> Any:
        from delta_v2a.planted import PlantedAudioEmbedder, PlantedImageEmbedder

        tower = PlantedImageEmbedder if modality == "image" else PlantedAudioEmbedder
        return tower(name_or_path, normalize=normalize)
