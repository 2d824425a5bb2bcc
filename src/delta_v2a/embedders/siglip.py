"""SigLIP (``model_type: siglip``, e.g. google/siglip-base-patch16-224): image and text towers.

What differs from CLIP: the image processor resizes to ``size`` (no crop), so the square the
model takes is ``size``; text is padded to the full ``max_length`` (64 tokens), as SigLIP was
trained, because its text embedding is the last token's state (padding longest would change
it); and its embedding size is the text width (there is no ``projection_dim``).
"""

from __future__ import annotations

from typing import Any

from transformers import SiglipModel

from delta_v2a.embedders import register
from delta_v2a.embedders.clip import ClipEmbedder
from delta_v2a.tiny_models import write_tiny_siglip


@register
class SiglipEmbedder(ClipEmbedder):
    family = "siglip"
    model_types = ("siglip",)
    modalities = ("image",)
    model_cls = SiglipModel
    text_padding = "max_length"
    write_tiny = staticmethod(write_tiny_siglip)

    def _processor_size(self) -> Any:
        return self.image_processor.size
