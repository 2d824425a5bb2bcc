"""What made an artifact: model ids, dtype, and whether the numbers can be science at all."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

NOT_SCIENCE = (
    "NOT SCIENCE: made with tiny randomly initialised models (offline demo/tests); "
    "the numbers exercise the pipeline and mean nothing about CLIP or CLAP."
)
PLANTED_NOTE = "NOT SCIENCE: planted embedders (delta_v2a.planted) with a built-in answer."


def merge_model_meta(metas: Iterable[Mapping]) -> dict:
    """Combine per-modality ``meta['model']`` records into one provenance block."""
    models = {}
    for meta in metas:
        model = meta.get("model")
        if model:
            models[meta.get("modality", model.get("name_or_path", "?"))] = dict(model)
    tiny = any(m.get("tiny") for m in models.values())
    planted = any(m.get("family") == "planted" for m in models.values())
    return {
        "models": models,
        # the hub commit of each model (models.revision, or what the files record); None when
        # neither is known, which a reader of the artifact should treat as "unpinned"
        "revisions": {k: m.get("revision") for k, m in models.items()},
        "dtypes": sorted({str(m.get("dtype")) for m in models.values()}),
        "not_science": tiny,
        "note": (PLANTED_NOTE if planted else NOT_SCIENCE) if tiny else "",
    }
