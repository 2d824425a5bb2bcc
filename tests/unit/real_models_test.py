"""The real-model recipe, offline: config/real.yaml's folders, laid out as `delta-v2a
fetch-models` leaves them (CLIP as `hf download --local-dir`; the audio folder converted from
an original-layout LAION-CLAP checkpoint by convert-clap), load through the workflow's own path.

The folders hold full-size random models (CLIP ViT-L/14: 428 M parameters, 1.6 GB; CLAP
HTSAT-base + RoBERTa-base: 194 M, 741 MB, written in the ORIGINAL layout and converted): the
same architectures and files as the real checkpoints, so config, processor, conversion, weight
loading, embedding sizes and the revision record are all exercised without a download. It costs one
to three minutes (measured: 2.6 min beside a workflow run) and 2.4 GB of temporary disk on a
2-core machine; DELTA_V2A_SKIP_FULL_SIZE=1 skips it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from delta_v2a.config import load_config

ROOT = Path(__file__).resolve().parents[2]
REAL = yaml.safe_load((ROOT / "config/real.yaml").read_text())
DEFAULTS = load_config(ROOT / "workflow/schemas/config.schema.yaml", ROOT / "config/config.yaml")

LOAD = """
import json, sys
from delta_v2a.jobs.common import load_embedder_for_job
from delta_v2a.settings import ModelSpec
models, dims = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {}
for modality, spec in models.items():
    model = ModelSpec(
        modality=modality, name_or_path=spec["name_or_path"], revision=spec["revision"],
        device="cpu", dtype="fp32", normalize=True, dim=dims[modality], family="auto",
    )
    emb = load_embedder_for_job(model, threads=2)
    out[modality] = emb.info.to_dict() | {"texts": emb.embed_texts(["a photo", "a song"]).shape}
print(json.dumps(out))
"""


def _hf_download_layout(folder: Path, commit: str) -> None:
    """The metadata `hf download --local-dir` writes beside each file (commit, etag, time)."""
    meta_dir = folder / ".cache/huggingface/download"
    meta_dir.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.is_file():
            (meta_dir / f"{path.name}.metadata").write_text(f'{commit}\n"etag"\n1.7e9\n')


@pytest.mark.skipif(os.environ.get("DELTA_V2A_SKIP_FULL_SIZE") == "1", reason="asked to skip")
def test_real_yaml_loads_offline_from_hf_download_folders(tmp_path, monkeypatch):
    from delta_v2a.config import check_models
    from delta_v2a.tiny_models import write_tiny_clip, write_tiny_laion_clap

    models = REAL["models"]
    revisions = {"audio": None} | models["revision"]
    write_tiny_clip(tmp_path / models["image"], seed=0, full_size=True)
    _hf_download_layout(tmp_path / models["image"], revisions["image"])
    write_tiny_laion_clap(tmp_path / models["audio"], seed=0, full_size=True)
    monkeypatch.chdir(tmp_path)  # real.yaml's paths are relative to the working directory
    check_models({"models": DEFAULTS["models"] | models})
    specs = {m: {"name_or_path": models[m], "revision": revisions[m]} for m in ("image", "audio")}
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", LOAD, json.dumps(specs), json.dumps(DEFAULTS["models"]["dim"])],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [info[m]["family"] for m in ("image", "audio")] == ["clip", "laion_clap"]
    for modality in ("image", "audio"):
        assert info[modality]["revision"] == revisions[modality]
        assert info[modality]["dim"] == DEFAULTS["models"]["dim"][modality]
        assert info[modality]["texts"] == [2, DEFAULTS["models"]["dim"][modality]]
    # the same folder downloaded at another commit is refused before anything runs
    _hf_download_layout(tmp_path / models["image"], "c" * 40)
    from delta_v2a.config import ConfigError

    with pytest.raises(ConfigError, match="models.revision.image"):
        check_models({"models": DEFAULTS["models"] | models})
