# ruff: noqa: F401  (this module re-exports the package's public names)
"""Reading the validated workflow config: effect parameters and every start-up check that a
schema cannot express.

The JSON schema (workflow/schemas/config.schema.yaml) checks types and ranges; what a schema
cannot express (known effect names, every intensity present, monotone levels, Nyquist) is
checked here, before any job runs, with messages that name the config key.

The modules: ``schema`` (defaults, merging, unknown keys, effect look-ups), ``checks`` (what
the schema cannot say), ``inputs`` (data roots, model folders, inventories), ``data_size`` (is
there audio enough). Importers use the names re-exported here.
"""

from delta_v2a.config.checks import (
    ANCHOR_CONTEXT,
    AUDIO_RATE_FOR_CHECKS,
    SharedWordWarning,
    check_config,
    check_config_for_console,
    check_phase1,
    check_phase3,
    check_shared_words,
    template_fields,
)
from delta_v2a.config.data_size import (
    MIN_TEST_FILES_TO_RUN,
    check_data_size,
)
from delta_v2a.config.inputs import (
    PLAN_INVENTORY_VARIABLE,
    check_data_roots,
    check_models,
    data_inventory,
    data_root,
    local_revision,
    looks_like_local_path,
    plan_inventory,
    relative_note,
)
from delta_v2a.config.schema import (
    NO_DEFAULT,
    ConfigError,
    check_keys,
    effect_names,
    effect_params,
    load_config,
    merge,
    one_line_refusal,
    schema_defaults,
    with_defaults,
)
from delta_v2a.constants import MODALITIES
