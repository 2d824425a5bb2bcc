"""Settings as a rule's ``params`` and back: :func:`to_params` gives plain builtin data (Snakemake
reruns a job when a ``params`` value's ``repr`` changes only for builtin types); inside the job
:func:`from_params` rebuilds the same frozen object, checking every field."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def to_params(settings: Any) -> dict[str, Any]:
    """Plain builtin data for a rule's ``params`` (tuples become lists: Snakemake compares
    params by ``repr``, and JSON-like data reads the same in every log)."""
    return _plain(dataclasses.asdict(settings))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def from_params(cls: type[T], data: Mapping[str, Any]) -> T:
    """Rebuild a settings object from :func:`to_params`'s data, checking every field.

    A missing or unknown field is a programming error between a rule and its job, so it
    raises at once rather than running with a half-built object.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    missing, extra = names - set(data), set(data) - names
    if missing or extra:
        raise TypeError(f"{cls.__name__}: missing {sorted(missing)}, unknown {sorted(extra)}")
    return cls(**{name: _build(hints[name], data[name]) for name in names})


def _build(hint: Any, value: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_params(hint, value)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return _build(inner[0], value) if len(inner) == 1 else value
    if origin is tuple:
        return tuple(_build(args[0], v) for v in value)
    if origin is dict:
        return {k: _build(args[1], v) for k, v in dict(value).items()}
    if origin is list:
        return [_build(args[0], v) for v in value]
    return value  # scalars as the config gave them (an int level stays an int in the meta)
