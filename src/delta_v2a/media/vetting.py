"""Vetting: decode a file exactly as the models will, before any model loads."""

from __future__ import annotations

import logging
from typing import Any

from delta_v2a.media.audio import load_audio_hashed
from delta_v2a.media.files import BadMediaError, FileChangedError, MediaFile, shown_path
from delta_v2a.media.images import load_image_hashed

log = logging.getLogger(__name__)


def probe(file: MediaFile, **decoding: Any) -> str | None:
    """Decode ``file`` exactly as the models will (``decoding``: :func:`vet_file`'s keywords);
    None if it is usable, else the reason."""
    return vet_file(file, **decoding)[0]


def vet_file(
    file: MediaFile,
    *,
    image_size: int,
    sr: int,
    window: int,
    preroll: int,
    budget: int | None = None,
) -> tuple[str | None, str]:
    """Decode ``file`` exactly as the models will: (None, sha256) if usable, else (reason, "").

    The SHA-256 is that of the very bytes decoded (see :func:`load_image_hashed`), so the
    manifest's cache key always matches what was vetted.
    """
    try:
        if file.modality == "image":
            _, sha = load_image_hashed(file.path, image_size, budget=budget)
        elif file.modality == "audio":
            _, sha = load_audio_hashed(file.path, sr, window, preroll)
        else:
            raise ValueError(f"unknown modality {file.modality!r} for {file.path}")
    except BadMediaError as exc:
        return exc.reason, ""
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}", ""
    except FileChangedError:
        raise  # not a bad file: the data changed under the job, which stops
    except Exception as exc:  # a decoder bug or an unforeseen file: this file, not the run
        log.debug("unexpected error vetting %s", shown_path(file.path), exc_info=True)
        what = " ".join(str(exc).split()) or "no message"
        return f"unexpected error while decoding ({type(exc).__name__}: {what})", ""
    return None, sha
