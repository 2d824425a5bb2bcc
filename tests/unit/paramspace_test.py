"""Phase 3 parameter space: neutral is the identity, one axis renders like extraction."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from phase3_utils import ALL_AUDIO, SR, music

from delta_v2a.effects import apply_audio_effect
from delta_v2a.phase3.paramspace import ParamSpace

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_space_runs_from_neutral_to_the_strongest_configured_level(space):
    assert space.names == [
        "lpf.cutoff_hz",
        "highshelf.gain_db",
        "saturation.drive_db",
        "reverb.room_size",
        "reverb.wet_level",
    ]
    lpf = space.axes[0]
    assert lpf.scale == "log" and lpf.physical(0) == SR / 2 and lpf.physical(1) == 800.0
    assert lpf.physical(0.5) == pytest.approx(math.sqrt(SR / 2 * 800.0))
    assert lpf.normalised(lpf.physical(0.3)) == pytest.approx(0.3)
    shelf = space.axes[1]
    assert (shelf.physical(0), shelf.physical(0.5), shelf.physical(1)) == (0.0, 6.0, 12.0)
    assert space.fixed["lpf"] == {"order": 4.0}
    assert space.fixed["reverb"] == {"damping": 0.5, "dry_level": 1.0, "width": 1.0}
    # out-of-range predictions are clipped, not extrapolated
    assert space.physical([2, -1, 0, 0, 0])["lpf"]["cutoff_hz"] == 800.0
    assert space.physical([2, -1, 0, 0, 0])["highshelf"] is None


def test_neutral_vector_is_the_identity_even_for_saturation(space):
    x = music()
    preroll = 4800
    out = space.render(x, SR, np.zeros(space.dim), preroll)
    np.testing.assert_array_equal(out, x[preroll:])
    # below bypass_below an effect is not called (saturation has no identity setting)
    vec = space.target("saturation", 0.01)
    assert space.physical(vec)["saturation"] is None
    np.testing.assert_array_equal(space.render(x, SR, vec, preroll), x[preroll:])


@pytest.mark.parametrize("effect", ALL_AUDIO)
def test_one_active_effect_renders_exactly_like_extraction(space, effect):
    x = music()
    preroll = 4800
    vec = space.target(effect, 0.7)
    params = space.physical(vec)[effect]
    expected = apply_audio_effect(effect, x, SR, params, preroll=preroll)
    np.testing.assert_array_equal(space.render(x, SR, vec, preroll), expected)
    assert all(p is None for e, p in space.physical(vec).items() if e != effect)


def test_space_serialises_to_plain_values(space):
    data = json.loads(json.dumps(space.to_dict()))
    assert ParamSpace.from_dict(data) == space
    with pytest.raises(ValueError, match="built for 48000 Hz"):
        space.render(music(sr=16_000, seconds=0.5), 16_000, np.zeros(space.dim))


# --------------------------------------------------------------------------- pairs, samples
