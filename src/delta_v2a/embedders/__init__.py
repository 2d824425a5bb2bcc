"""Embedders as plug-ins: a registry of model families, each in its own module here.

Why a registry: the study asks whether a finding is a quirk of one model, so a model family
must be a small addition, not an edit to a switch. A family is a class with the interface of
:class:`~delta_v2a.embedders.base.Embedder`, registered with :func:`register` in a module of
this package (modules are found by listing the package, nothing imports them by name), and a
tiny random model builder so the tests load it offline (``write_tiny``).

Which family loads a model: ``models.family.<modality>`` in the config when it is not
``auto``; else the model folder's ``config.json``: its ``delta_v2a_family`` (written by
``delta-v2a convert-clap``), else its ``model_type`` (``clip``, ``siglip``, ``clap``). A name
that is neither a folder nor a cached hub model needs an explicit family (the planted world's
``planted:image`` says ``family: planted`` in its config).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from delta_v2a.constants import MODALITIES
from delta_v2a.embedders.base import FETCH_HINT, Embedder, ModelInfo

__all__ = [
    "AUTO",
    "Embedder",
    "ModelInfo",
    "families",
    "family",
    "family_of",
    "load_embedder",
    "register",
]

AUTO = "auto"
#: the key in a model folder's config.json that names its family outright
FAMILY_KEY = "delta_v2a_family"
_REGISTRY: dict[str, Any] = {}
_NOT_FAMILIES = {"base"}


def register(cls: type) -> type:
    """Class decorator: add a family (its ``family`` name must be new)."""
    name = cls.family
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"model family {name!r} is registered twice")
    _REGISTRY[name] = cls
    return cls


def _discover() -> None:
    """Import every family module of this package once (each registers itself)."""
    for mod in pkgutil.iter_modules(__path__):
        if mod.name not in _NOT_FAMILIES:
            importlib.import_module(f"{__name__}.{mod.name}")


def families() -> dict[str, Any]:
    """Family name -> class, every family this package holds."""
    _discover()
    return dict(sorted(_REGISTRY.items()))


def family(name: str) -> Any:
    """The class of family ``name``; an unknown name lists the known ones."""
    known = families()
    if name not in known:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(known)}")
    return known[name]


def _config_json(name_or_path: str, revision: str | None) -> dict[str, Any] | None:
    """The model's config.json: from the folder, else from the Hugging Face cache or hub."""
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        path: Path | None = local / "config.json"
    else:
        try:
            from transformers.utils import cached_file

            found = cached_file(
                name_or_path,
                "config.json",
                revision=revision,
                _raise_exceptions_for_missing_entries=False,
            )
        except (OSError, ValueError):
            found = None
        path = Path(found) if found else None
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable JSON config ({err})") from None


def family_of(name_or_path: str, declared: str | None = AUTO, revision: str | None = None) -> str:
    """The family that loads ``name_or_path``: ``declared`` unless auto, else its config."""
    if declared and declared != AUTO:
        family(declared)
        return declared
    config = _config_json(name_or_path, revision)
    if config is None:
        raise FileNotFoundError(
            f"model {name_or_path!r}: no model folder or cached hub model there, so its family "
            f"cannot be read; {FETCH_HINT}"
        )
    if config.get(FAMILY_KEY):
        return family(str(config[FAMILY_KEY])).family
    model_type = config.get("model_type")
    for name, cls in families().items():
        if model_type in cls.model_types and getattr(cls, "claims_model_type", True):
            return name
    raise ValueError(
        f"model {name_or_path!r}: no family loads model_type {model_type!r}; set "
        f"models.family to one of {', '.join(families())}"
    )


def load_embedder(
    modality: str, name_or_path: str, *, family_name: str | None = AUTO, **kw: Any
) -> Any:
    """Load the ``modality`` tower ("image" or "audio") of a model through its family;
    ``kw`` (device, dtype, normalize, revision) go to the family's ``open``."""
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; use 'image' or 'audio'")
    cls = family(family_of(name_or_path, family_name, kw.get("revision")))
    if modality not in cls.modalities:
        raise ValueError(
            f"model {name_or_path!r} is a {cls.family} model: it has no {modality} tower "
            f"(it offers {', '.join(cls.modalities)})"
        )
    return cls.open(modality, name_or_path, **kw)


def tiny_writers() -> dict[str, Callable[..., Path]]:
    """Family -> its tiny random model writer ``write_tiny(out_dir, seed)``, where it has one."""
    return {n: c.write_tiny for n, c in families().items() if getattr(c, "write_tiny", None)}
