"""Delta transfer science on constructed embeddings with known answers (docs/methods.md §7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from delta_v2a import transfer as tr
from delta_v2a.transfer.types import TransferPayload

EFFECTS = ["blur", "brightness", "saturation", "contrast"]


def _units(dim: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return tr.unit_prototypes(rng.standard_normal((len(EFFECTS), dim)), EFFECTS)


def test_a_known_mix_of_two_prototypes_is_recovered():
    """d = 0.30 p̂_blur + 0.15 p̂_saturation + noise (σ = 0.002 per dimension, |noise| ≈ 0.016):
    both strengths within 0.01, the absent effects below 0.01, shares summing to R²."""
    units = _units()
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        d = 0.30 * units[0] + 0.15 * units[2] + 0.002 * rng.standard_normal(units.shape[1])
        dec = tr.decompose(d, units, EFFECTS)
        assert abs(dec.strengths[0] - 0.30) < 0.01 and abs(dec.strengths[2] - 0.15) < 0.01
        assert dec.strengths[1] < 0.01 and dec.strengths[3] < 0.01
        assert dec.shares.sum() == pytest.approx(dec.explained, abs=1e-9)
        assert dec.explained > 0.99 and dec.cosine == pytest.approx(np.sqrt(dec.explained))
        assert dec.residual == pytest.approx(dec.delta_norm * np.sqrt(1 - dec.explained))
        assert tr.refusal(dec, 0.5) is None
        assert tr.recognise(dec, 0.1) == ["blur", "saturation"]


def test_an_undone_effect_gets_no_negative_strength():
    units = _units()
    dec = tr.decompose(-0.2 * units[1] + 0.1 * units[3], units, EFFECTS)
    assert np.all(dec.strengths >= 0) and dec.strengths[1] == 0.0


def test_a_delta_orthogonal_to_every_prototype_is_refused():
    units = _units()
    rng = np.random.default_rng(7)
    d = rng.standard_normal(units.shape[1])
    q, _ = np.linalg.qr(units.T)
    d -= q @ (q.T @ d)  # remove the prototypes' span
    dec = tr.decompose(d, units, EFFECTS)
    assert dec.explained == pytest.approx(0.0, abs=1e-12) and np.allclose(dec.strengths, 0)
    assert "matches no known effect" in tr.refusal(dec, 0.2)
    assert tr.recognise(dec, 0.1) == []


def test_a_zero_delta_is_no_edit():
    dec = tr.decompose(np.zeros(64), _units(), EFFECTS)
    assert tr.refusal(dec, 0.2).startswith("no edit found")


def test_prototypes_without_direction_are_named():
    bad = np.ones((4, 8))
    bad[2] = np.nan
    with pytest.raises(ValueError, match=r"\['saturation'\]"):
        tr.unit_prototypes(bad, EFFECTS)


def test_strength_curve_inverse_round_trips():
    curve = tr.StrengthCurve.from_levels([0.10, 0.25, 0.30])
    assert curve.theta == (0.0, 1 / 3, 2 / 3, 1.0)
    for theta in np.linspace(0, 1, 31):
        back, ok = curve.level(curve.at(theta))
        assert ok and back == pytest.approx(theta, abs=1e-12)
    assert curve.level(0.5) == (1.0, False)  # stronger than the strongest level: clipped
    # a curve that dips is inverted on its running maximum: monotone, never ambiguous
    dip = tr.StrengthCurve.from_levels([0.2, 0.15, 0.3])
    assert dip.level(0.18) == pytest.approx((0.3, True))
    assert dip.level(0.2) == pytest.approx((1 / 3, True))
    with pytest.raises(ValueError):
        tr.StrengthCurve((0.0, 0.5), (0.0, 0.1))


def test_u_solver_inverts_a_known_monotone_curve_within_grid_tolerance():
    """g(u) = u² on an 11-point grid: linear interpolation of u² errs by at most h²/4 in g,
    i.e. |û − √t| <= h/2 at h = 0.1 (tight near 0)."""
    grid = np.linspace(0, 1, 11)
    for t in np.linspace(0.001, 1, 50):
        u, ok = tr.solve_monotone(grid, grid**2, t)
        assert ok and abs(u - np.sqrt(t)) <= 0.05
    assert tr.solve_monotone(grid, grid**2, 1.5) == (1.0, False)


def test_chain_order_is_the_configured_order():
    order = ["lpf", "highshelf", "saturation", "reverb"]
    assert tr.chain_order(["reverb", "lpf"], order) == ["lpf", "reverb"]
    with pytest.raises(ValueError, match="not in the chain"):
        tr.chain_order(["phaser"], order)


def test_kappa_maps_the_strongest_image_level_onto_the_audio_norm():
    assert tr.kappa(0.4, 0.1) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        tr.kappa(0.0, 0.1)


def test_payload_is_plain_and_calibrated(tmp_path):
    units = _units(dim=32)
    rng = np.random.default_rng(3)
    known = np.abs(rng.standard_normal((200, 4))) @ units + 0.05 * rng.standard_normal((200, 32))
    cal = tr.explained_shares(known, units)
    null = tr.null_share(units, n=500)
    payload = tr.build_payload(
        effects=EFFECTS,
        units=units,
        curves={e: tr.StrengthCurve.from_levels([0.1, 0.2, 0.3]) for e in EFFECTS},
        pairs=[{"image_effect": "blur", "audio_effect": "lpf", "p_adjusted": 0.01}],
        image_model={"name_or_path": "x", "revision": None},
        calibration=cal,
        null=null,
    )
    th = payload["thresholds"]
    assert th["explained_share_min"] == pytest.approx(
        max(np.quantile(cal, 0.05), th["calibration"]["null_share_q95"])
    )
    # 4 near-orthogonal directions in 32 dimensions, non-negative weights: a random direction
    # keeps each component with probability 1/2, so it explains about 4 / (2 · 32) of itself
    assert th["calibration"]["null_share_mean"] == pytest.approx(4 / 64, abs=0.015)
    torch.save({"transfer": payload}, tmp_path / "p.pt")
    back = torch.load(tmp_path / "p.pt", weights_only=True)["transfer"]
    assert back == payload
    np.testing.assert_allclose(np.array(back["prototypes"]), units)


def _payload_dict() -> dict:
    """A plain payload as geometry.build_payload makes it (the model file's entry)."""
    units = _units(dim=16)
    pair = {
        "image_effect": "blur",
        "audio_effect": "lpf",
        "score": 0.2,
        "p_value": 0.001,
        "p_adjusted": 0.004,
        "alpha": 0.05,
        "significant": True,
        "audio_norm_strongest": 0.3,
        "kappa": tr.kappa(0.3, 0.3),
    }
    return tr.build_payload(
        effects=EFFECTS,
        units=units,
        curves={e: tr.StrengthCurve.from_levels([0.1, 0.2, 0.3]) for e in EFFECTS},
        pairs=[pair],
        image_model={"name_or_path": "x", "revision": None, "normalize": True},
        calibration=tr.explained_shares(np.abs(units[:3]) + 0.1, units),
        null=tr.null_share(units, n=50),
        alpha=0.05,
        chain=["lpf", "highshelf"],
    )


def test_typed_payload_round_trips_the_plain_entry():
    raw = _payload_dict()
    typed = TransferPayload.from_dict(raw)
    assert typed.to_dict() == raw
    assert TransferPayload.from_dict(typed.to_dict()) == typed
    assert list(typed.to_dict()) == list(raw)  # the same keys in the same order
    assert typed.pair_of("blur").audio_effect == "lpf" and typed.pair_of("contrast") is None
    np.testing.assert_array_equal(typed.units, np.asarray(raw["prototypes"]))
    assert typed.thresholds.explained_share_min == raw["thresholds"]["explained_share_min"]


def test_typed_payload_refuses_another_version_and_names_a_missing_key():
    raw = _payload_dict()
    with pytest.raises(ValueError, match="version 2; this delta-v2a reads version 1"):
        TransferPayload.from_dict(raw | {"version": 2})
    with pytest.raises(ValueError, match="thresholds lacks zero_delta"):
        th = dict(raw["thresholds"])
        del th["zero_delta"]
        TransferPayload.from_dict(raw | {"thresholds": th})
    pair = dict(raw["pairs"][0])
    del pair["kappa"]
    with pytest.raises(ValueError, match=r"pairs\[0\] lacks kappa"):
        TransferPayload.from_dict(raw | {"pairs": [pair]})
