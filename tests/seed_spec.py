"""Formats the seed document and the jobs fix, written once for every test that checks them."""

#: The keys of one record of image_deltas.json / audio_deltas.json.
SEED_RECORD_KEYS = frozenset(
    {
        "modality",
        "effect_type",
        "intensity",
        "category",
        "delta",
        "original_embedding",
        "augmented_embedding",
        "path",
    }
)

#: The job arguments that name the original (unedited) variant of an extract job.
ORIGINAL_VARIANT = {"effect": None, "intensity": None, "effect_params": {}}
