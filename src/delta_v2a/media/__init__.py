"""Discovery and decoding of the input media: the one place where files become arrays.

Every model-facing array comes from :func:`load_image` or :func:`load_audio`, so the decisions
that change what a model sees (orientation, alpha, resampling, padding) are made once, here,
and :func:`probe` can vet every file with exactly the code that will later feed the models.

Decisions a maintainer should know:

* Transparent images are composited onto **white** (not black, and alpha is not dropped): a
  viewer on a white page shows them that way, and dropping alpha would let the arbitrary
  colours hidden under fully transparent pixels into the embedding.
* Images are resampled in float32 with PIL's antialiased **bicubic** filter (the filter CLIP's
  own preprocessing uses), short side to ``size`` and centre-cropped in one step
  (``resize(box=...)``), so 16-bit sources keep their precision and nothing is quantised twice.
* Images smaller than :data:`MIN_IMAGE_SIDE` on a side are rejected; larger small images are
  upscaled.
* Audio is treated as **periodic**: files shorter than the requested span are tiled end to start,
  and a preroll that reaches before the start of the file takes the file's own end. Zeros would
  add silence, which a model embeds as "silence", and change the level of short clips.
* Audio shorter than :data:`MIN_AUDIO_SECONDS` is rejected; NaN/inf and silence checks look at the
  decoded span (the only part that is used), so a 2-hour file is never read in full. Vetting
  decodes the longest span any later phase reads (docs/methods.md section 8).
* Every decode is tied to the bytes it read: images are decoded from one in-memory read whose
  SHA-256 is the cache key; audio is hashed before and after its decode. A file that no longer
  matches the manifest raises :class:`FileChangedError` instead of feeding another file's
  pixels into a content-addressed cache.
* Truncated data is an error in every format (PIL's ``LOAD_TRUNCATED_IMAGES`` stays off, and a
  PNG's image data is checked to hold every row); the memory a decode needs is estimated from
  the declared size before decoding and refused above the budget (default
  :data:`MAX_DECODE_BYTES`, raised by the config key :data:`BUDGET_KEY`).
* Embedded ICC profiles are honoured (converted to sRGB with littleCMS); animations are refused.
"""

from delta_v2a.media.audio import (
    MIN_AUDIO_SECONDS,
    RESAMPLE_QUALITY,
    decode_audio,
    load_audio,
    load_audio_hashed,
)
from delta_v2a.media.files import (
    ROOT_KEYS,
    BadMediaError,
    FileChangedError,
    MediaFile,
    content_hash,
    path_from_shown,
    shown_path,
)
from delta_v2a.media.formats import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, MODALITY_EXTENSIONS
from delta_v2a.media.images import (
    BUDGET_KEY,
    MAX_DECODE_BYTES,
    MAX_IMAGE_PIXELS,
    MIN_IMAGE_SIDE,
    load_image,
    load_image_hashed,
)
from delta_v2a.media.vetting import probe, vet_file
from delta_v2a.media.walk import Walk, discover, walk_root

__all__ = [
    "AUDIO_EXTENSIONS",
    "BUDGET_KEY",
    "IMAGE_EXTENSIONS",
    "MAX_DECODE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MIN_AUDIO_SECONDS",
    "MIN_IMAGE_SIDE",
    "MODALITY_EXTENSIONS",
    "RESAMPLE_QUALITY",
    "ROOT_KEYS",
    "BadMediaError",
    "FileChangedError",
    "MediaFile",
    "content_hash",
    "decode_audio",
    "discover",
    "load_audio",
    "load_audio_hashed",
    "load_image",
    "load_image_hashed",
    "path_from_shown",
    "probe",
    "shown_path",
    "vet_file",
    "Walk",
    "walk_root",
]
