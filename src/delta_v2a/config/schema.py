"""The config as the workflow sees it: the schema's defaults under the config files, unknown
keys refused with a "did you mean", and the look-ups every part shares (effect names and
parameters, the one-line refusal)."""

from __future__ import annotations

import contextlib
import copy
import difflib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

#: What :func:`schema_defaults` gives for a key the schema has no default for.
NO_DEFAULT = object()


class ConfigError(ValueError):
    """A config value the schema could not reject; the message names the key."""


def schema_defaults(schema: Mapping[str, Any]) -> Any:
    """The config the schema's ``default`` values make on their own (docs: config/README.md).

    Why here: the schema is the one owner of every default; config/config.yaml is only an
    overlay of what a user usually changes. An object's default is its own ``default`` merged
    with the defaults of its properties, so nested defaults need no repetition. A key without
    a default is absent (``NO_DEFAULT``); a ``default: null`` is a default of None.
    """
    props = schema.get("properties")
    if props is None:
        return copy.deepcopy(schema["default"]) if "default" in schema else NO_DEFAULT
    base = schema.get("default", NO_DEFAULT)
    out = copy.deepcopy(base) if isinstance(base, Mapping) else {}
    for key, sub in props.items():
        value = schema_defaults(sub)
        if value is not NO_DEFAULT:
            out[key] = merge(value, out[key]) if key in out else value
    return out if out or base is not NO_DEFAULT else NO_DEFAULT


def merge(base: Any, overlay: Any) -> Any:
    """Overlay ``overlay`` on ``base`` as Snakemake merges config files: mappings merge key by
    key, anything else (lists included) replaces."""
    if isinstance(base, Mapping) and isinstance(overlay, Mapping):
        out = dict(base)
        for key, value in overlay.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(overlay)


def with_defaults(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` (the merged config files) on top of the schema's defaults.

    Why not ``snakemake.utils.validate(config, schema, set_default=True)``: it sets an object's
    default only where the whole key is absent, so a config giving one nested key (say
    ``effects.image.blur.levels.low``) loses the rest of that object's defaults and is refused
    (checked with snakemake 9.27.1); here defaults merge under the config key by key.
    """
    defaults = schema_defaults(schema)
    return merge({} if defaults is NO_DEFAULT else defaults, config)


def load_config(schema_path: str | Path, *config_paths: str | Path) -> dict[str, Any]:
    """What the workflow sees for these config files (tests, benchmarks, scripts): the schema's
    defaults under the files, merged in order."""
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    config: dict[str, Any] = {}
    for path in config_paths:
        config = merge(config, yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})
    return with_defaults(config, schema)


def check_keys(config: Mapping[str, Any], schema: Mapping[str, Any], prefix: str = "") -> None:
    """Reject unknown keys with the closest valid one, before the schema validator runs.

    Why: Snakemake's ``validate()`` reports an unknown key by printing the whole schema and the
    whole config (hundreds of lines); a typo deserves one line and a "did you mean". Only objects
    the schema closes (``additionalProperties: false``) are checked, recursively.
    """
    props = schema.get("properties")
    if not isinstance(config, Mapping) or props is None:
        return
    if schema.get("additionalProperties", True) is False:
        for key in config:
            if key not in props:
                where = f"{prefix}{key}"
                close = difflib.get_close_matches(str(key), list(props), n=1, cutoff=0.6)
                hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
                raise ConfigError(
                    f"{where}: unknown config key{hint} (valid here: {', '.join(sorted(props))}; "
                    "see config/README.md)"
                )
    for key, sub in props.items():
        if key in config and isinstance(sub, Mapping):
            check_keys(config[key], sub, f"{prefix}{key}.")


def effect_names(config: Mapping[str, Any], modality: str) -> list[str]:
    """The effects to run: ``run_effects.<modality>`` (a list, so an overlay replaces it),
    else every effect defined under ``effects.<modality>``."""
    chosen = config.get("run_effects", {}).get(modality)
    return list(chosen) if chosen else list(config["effects"][modality])


def effect_params(
    config: Mapping[str, Any], modality: str, effect: str, intensity: str
) -> dict[str, float]:
    """Physical parameters of one variant: the effect's fixed values, then the level's."""
    spec = config["effects"][modality][effect]
    return {**spec.get("fixed", {}), **spec["levels"][intensity]}


@contextlib.contextmanager
def one_line_refusal(stream: Any = None) -> Iterator[None]:
    """Around the workflow's parse-time checks: a ConfigError ends the run with its message as
    one "Error: ..." line and exit status 1. Why: Snakemake prints an exception raised while
    the Snakefile is parsed with the Python frames it passed through; a refusal is a line a
    person reads (docs/methods.md §8), not a traceback."""
    import sys

    try:
        yield
    except ConfigError as err:
        print(f"Error: {err}", file=stream or sys.stderr)
        raise SystemExit(1) from None
