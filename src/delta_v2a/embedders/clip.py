"""CLIP (OpenAI and compatible checkpoints): image and text towers, ``model_type: clip``.

Images arrive as float32 RGB in [0, 1] at the processor's crop size. The image processor is
asked for the PIL backend explicitly and told not to resize, crop or rescale, so the model sees
exactly ``(img - image_mean) / image_std`` (a test checks this), and installing torchvision
later cannot silently change preprocessing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import CLIPModel

from delta_v2a.embedders import register
from delta_v2a.embedders.base import (
    HFEmbedder,
    ModelInfo,
    _finite_float32,
    _text_max_length,
    to_device,
)
from delta_v2a.tiny_models import write_tiny_clip

#: The CLIP image processor's work that is left to it: mean/std normalisation only, on float
#: RGB in [0, 1], channels last. Geometry (resize, crop) and rescaling belong to the callers.
_NORMALISE_ONLY = {
    "do_resize": False,
    "do_center_crop": False,
    "do_rescale": False,
    "do_normalize": True,
    "input_data_format": "channels_last",
    "return_tensors": "pt",
}


# --------------------------------------------------------------------------- CLIP


@register
class ClipEmbedder(HFEmbedder):
    """CLIP image and text embeddings for preprocessed images (see module docstring)."""

    family = "clip"
    model_types = ("clip",)
    modalities = ("image",)
    model_cls = CLIPModel
    processor_kw = {"backend": "pil"}
    write_tiny = staticmethod(write_tiny_clip)

    def __init__(self, model: CLIPModel, processor: Any, info: ModelInfo, normalize: bool) -> None:
        super().__init__(model, processor, info, normalize)
        self.image_processor = processor.image_processor
        # a SizeDict in transformers 5 (attribute access), a plain dict in older versions
        size = self._processor_size()
        height = getattr(size, "height", None) or size["height"]
        width = getattr(size, "width", None) or size["width"]
        if height != width or height != model.config.vision_config.image_size:
            raise ValueError(
                f"processor crop size {height}x{width} does not match the model's image size "
                f"{model.config.vision_config.image_size}"
            )
        self.input_size: int = int(height)
        self.info = dataclasses.replace(info, input_size=self.input_size)
        text_cfg = model.config.text_config
        self._text_max_length = _text_max_length(self.tokenizer, text_cfg.max_position_embeddings)

    def _processor_size(self) -> Any:
        """The square the model takes: CLIP's processor crops to ``crop_size``."""
        return self.image_processor.crop_size

    def _check_image(self, i: int, img: np.ndarray) -> np.ndarray:
        arr = np.asarray(img)
        size = self.input_size
        if arr.shape != (size, size, 3):
            raise ValueError(
                f"image {i}: expected shape ({size}, {size}, 3) (already resized and cropped), "
                f"got {arr.shape}"
            )
        arr = _finite_float32(f"image {i}", arr, "float RGB in [0, 1]")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(f"image {i}: values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]")
        return arr

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """The exact pixel_values the model receives: (img - mean) / std, channels first.

        Resizing, cropping and rescaling are switched off: callers own geometry.
        """
        arrays = [self._check_image(i, img) for i, img in enumerate(images)]
        out = self.image_processor(images=arrays, **_NORMALISE_ONLY)
        return out["pixel_values"]

    def prepare(self, item: np.ndarray, index: int = 0) -> torch.Tensor:
        """One image's pixel_values (3, H, W); errors name the image by ``index``."""
        self._check_image(index, item)
        return self.preprocess([item])[0]

    def forward(self, prepared: Sequence[torch.Tensor]) -> torch.Tensor:
        pixels = to_device(torch.stack(list(prepared)), self._device, self._dtype)
        return self.model.get_image_features(pixel_values=pixels).pooler_output

    def embed_images(self, images: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """(n, dim) float32 image embeddings; unit-norm rows when `normalize`."""
        return self.embed(images, batch_size)
