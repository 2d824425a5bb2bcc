"""The original LAION-CLAP checkpoint, exactly: a known-answer parity test against the reference.

A tiny randomly initialised CLAP is built from the reference implementation's own classes
(``laion_clap`` 1.1.7's ``CLAP`` and ``HTSAT_Swin_Transformer``; its RoBERTa is a tiny
``RobertaModel`` built here, because the reference downloads roberta-base at construction),
saved in the ORIGINAL checkpoint layout, converted by the project (``convert-clap``'s code) and
loaded through the project's one embedding path. Text and audio embeddings must equal the
reference's (its own ``get_audio_features`` preprocessing: 48 kHz, 10 s, fusion off,
``rand_trunc`` + ``repeatpad``; its own in-model torchlibrosa mel front end) to <= 1e-4.

``laion_clap`` is a test-only dependency (requirements-test.txt: installed with --no-deps, its
pins conflict with ours); the module is skipped where it is absent.
"""

from __future__ import annotations

import ast
import importlib
import sys
import types
from contextlib import suppress
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("torchlibrosa")
LAION = importlib.util.find_spec("laion_clap")
if LAION is None:
    pytest.skip("laion_clap (requirements-test.txt) is not installed", allow_module_level=True)

from delta_v2a.embedders import laion_clap  # noqa: E402
from delta_v2a.models import load_embedder  # noqa: E402
from delta_v2a.tiny_models import _roberta_tokenizer  # noqa: E402

TOLERANCE = 1e-4
PROMPTS = ["a solo jazz piano", "heavy traffic noise", "rain on a tin roof", "a violin concerto"]


def _reference_modules():
    """laion_clap's model and HTSAT modules, imported without its package __init__ (which
    pulls in the training stack: torchvision, webdataset, wandb, h5py)."""
    import transformers  # noqa: F401  (imported before the torchvision stand-in below)

    root = Path(LAION.submodule_search_locations[0])
    for name, path in (("laion_clap", root), ("laion_clap.clap_module", root / "clap_module")):
        if name not in sys.modules:
            mod = types.ModuleType(name)
            mod.__path__ = [str(path)]
            sys.modules[name] = mod
    # utils.py imports these at the top and uses them in functions the parity never calls
    stand_ins = {n: types.ModuleType(n) for n in ("torchvision", "torchvision.ops")}
    stand_ins["torchvision.ops.misc"] = types.SimpleNamespace(FrozenBatchNorm2d=None)
    stand_ins.update({n: types.ModuleType(n) for n in ("h5py",) if n not in sys.modules})
    added = [n for n in stand_ins if n not in sys.modules]
    sys.modules.update({n: stand_ins[n] for n in added})
    try:
        model = importlib.import_module("laion_clap.clap_module.model")
        htsat = importlib.import_module("laion_clap.clap_module.htsat")
    finally:
        for n in added:
            sys.modules.pop(n, None)
    return model, htsat, _reference_get_audio_features(root / "training" / "data.py")


def _reference_get_audio_features(path: Path):
    """The reference's own ``get_audio_features`` (training/data.py), compiled on its own: the
    rest of that file needs the training stack. It uses torch, numpy and F only on our path."""
    tree = ast.parse(path.read_text())
    fn = next(n for n in tree.body if getattr(n, "name", "") == "get_audio_features")
    namespace = {"torch": torch, "np": np, "F": F, "suppress": suppress}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), str(path), "exec"), namespace)
    return namespace["get_audio_features"]


def _build_reference(seed: int = 3):
    """A tiny reference CLAP: HTSAT (width 16, depths 2+2 so shifted windows are exercised),
    RoBERTa (width 128, 2 heads of 64, 2 layers), 512-d joint space, fusion off."""
    from transformers import RobertaConfig, RobertaModel

    model, htsat, get_audio_features = _reference_modules()
    tokenizer = _roberta_tokenizer()
    torch.manual_seed(seed)
    audio_cfg = model.CLAPAudioCfp(
        model_type="HTSAT", model_name="tiny", sample_rate=48000, audio_length=1024,
        window_size=1024, hop_size=480, fmin=50, fmax=14000, class_num=527, mel_bins=64,
        clip_samples=480000,
    )  # fmt: skip
    text_cfg = {"context_length": 77, "vocab_size": 8, "width": 8, "heads": 1, "layers": 1,
                "model_type": "transformer"}  # fmt: skip
    clap = model.CLAP(embed_dim=32, audio_cfg=audio_cfg, text_cfg=text_cfg)
    clap.audio_branch = htsat.HTSAT_Swin_Transformer(
        spec_size=256, patch_size=4, patch_stride=(4, 4), num_classes=527, embed_dim=16,
        depths=[2, 2], num_heads=[2, 4], window_size=8, config=audio_cfg,
    )  # fmt: skip
    roberta = RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=128, num_attention_heads=2, num_hidden_layers=2,
        intermediate_size=256, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
        layer_norm_eps=1e-5, initializer_range=0.2,
    )  # fmt: skip
    clap.text_branch, clap.text_branch_type = RobertaModel(roberta), "roberta"
    clap.text_projection = torch.nn.Sequential(
        torch.nn.Linear(128, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512)
    )
    for unused in ("token_embedding", "positional_embedding", "ln_final"):
        delattr(clap, unused)
    with torch.no_grad():  # as tiny_models: a dB-range input norm, so clips differ
        clap.audio_branch.bn0.running_mean.fill_(-50.0)
        clap.audio_branch.bn0.running_var.fill_(900.0)
    return clap.eval(), tokenizer, audio_cfg, get_audio_features


def _clips() -> list[np.ndarray]:
    t = np.arange(480_000) / 48_000
    rng = np.random.default_rng(0)
    return [
        (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
        (0.1 * rng.standard_normal(t.size)).astype(np.float32),
        (0.4 * np.sin(2 * np.pi * (200 + 900 * t) * t) * np.exp(-t)).astype(np.float32),
    ]


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    """Reference embeddings, and the project's of the same checkpoint after conversion."""
    import dataclasses

    clap, tokenizer, audio_cfg, get_audio_features = _build_reference()
    root = tmp_path_factory.mktemp("laion")
    ckpt = root / "tiny_original.pt"
    state = {f"module.{k}": v for k, v in clap.state_dict().items()}
    torch.save({"epoch": 1, "state_dict": state}, ckpt)
    with torch.no_grad():
        tok = tokenizer(PROMPTS, padding="max_length", truncation=True, max_length=77,
                        return_tensors="pt")  # fmt: skip
        ref_text = clap.get_text_embedding(dict(tok)).numpy()
        inputs = [
            get_audio_features({}, torch.from_numpy(c), 480000, data_truncating="rand_trunc",
                               data_filling="repeatpad", audio_cfg=dataclasses.asdict(audio_cfg))
            for c in _clips()
        ]  # fmt: skip
        ref_audio = clap.get_audio_embedding(inputs).numpy()
    receipt = laion_clap.convert(ckpt, root / "converted", tokenizer=tokenizer)
    ours = load_embedder("audio", str(root / "converted"), device="cpu", dtype="fp32")
    return {
        "receipt": receipt,
        "embedder": ours,
        "ref_text": ref_text,
        "ref_audio": ref_audio,
        "text": ours.embed_texts(PROMPTS),
        "audio": ours.embed_audio(_clips(), batch_size=2),
    }


def test_text_embeddings_equal_the_reference(parity):
    diff = float(np.abs(parity["text"] - parity["ref_text"]).max())
    print(f"text max abs difference {diff:.3g}")
    assert diff <= TOLERANCE
    cos = parity["ref_text"] @ parity["ref_text"].T
    assert cos[np.triu_indices(len(PROMPTS), 1)].max() < 0.99  # prompts differ: not trivial


def test_audio_embeddings_equal_the_reference(parity):
    diff = float(np.abs(parity["audio"] - parity["ref_audio"]).max())
    print(f"audio max abs difference {diff:.3g}")
    assert diff <= TOLERANCE
    cos = parity["ref_audio"] @ parity["ref_audio"].T
    assert cos[np.triu_indices(3, 1)].max() < 0.999  # clips differ: not trivial


def test_converted_folder_is_its_own_family_and_says_its_source(parity):
    info = parity["embedder"].info
    assert info.family == "laion_clap" and (info.sampling_rate, info.window_samples) == (
        48000,
        480000,
    )
    receipt = parity["receipt"]
    assert not receipt["sha256_matches"] and "NOT the published" in receipt["sha256_note"]
    assert max(receipt["front_end_check"].values()) < 1e-6
    assert any(k.endswith("attn_mask") for k in receipt["dropped"])  # shifted windows seen


def test_a_wrong_weight_is_caught(tmp_path):
    """The parity could fail: one swapped tensor (key and value of the first audio block)
    moves the audio embeddings beyond ten times the tolerance (1.5e-3 measured)."""
    clap, tokenizer, *_ = _build_reference()
    state = {f"module.{k}": v for k, v in clap.state_dict().items()}
    qkv = "module.audio_branch.layers.0.blocks.0.attn.qkv.weight"
    q, k, v = state[qkv].chunk(3)
    state[qkv] = torch.cat([q, v, k])
    good, bad = tmp_path / "good.pt", tmp_path / "bad.pt"
    torch.save({"state_dict": {**state, qkv: torch.cat([q, k, v])}}, good)
    torch.save({"state_dict": state}, bad)
    out = []
    for path in (good, bad):
        laion_clap.convert(path, tmp_path / path.stem, tokenizer=tokenizer)
        emb = load_embedder("audio", str(tmp_path / path.stem), device="cpu")
        out.append(emb.embed_audio(_clips()[:2]))
    assert np.abs(out[0] - out[1]).max() > 10 * TOLERANCE
