"""Build Phase 1's foil vocabulary (src/delta_v2a/phase1_foils.tsv) from WordNet's adjective
clusters (docs/methods.md §5).

    apt-get install -y wordnet-base          # Debian's WordNet 3.0 data, /usr/share/wordnet
    .venv/bin/python scripts/build_foils.py  # rewrites src/delta_v2a/phase1_foils.tsv

Why WordNet's clusters: a descriptive adjective's cluster is a head synset with its similar-to
satellites, and its antonym heads ANOTHER cluster ("hot" and "cold" are two clusters), so each
cluster is one-sided: one meaning, never two opposite poles. Phase 1's null treats a cluster as
one exchangeable concept, so it needs hundreds of them.

Rules (each one is a line below): descriptive adjectives only (lexicographer file adj.all);
every word sits in the cluster of its most frequent sense (WordNet's index order), so a
polysemous word is in one cluster only; single words or hyphenated words of 3-15 letters; no
word sharing a content word with any configured synonym or effect name (config/*.yaml and the
schema's defaults); at most MAX_WORDS per cluster, most frequent (SemCor tag count) first; a
cluster is kept with at least MIN_WORDS usable words. The workflow reads only the TSV written
here: WordNet is not needed at run time.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from collections import defaultdict
from pathlib import Path

import yaml

from delta_v2a.phase1.anchors import content_words, readable

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src/delta_v2a/phase1_foils.tsv"
CONFIGS = sorted((ROOT / "config").glob("*.yaml")) + [ROOT / "workflow/schemas/config.schema.yaml"]
MIN_WORDS, MAX_WORDS = 3, 10
WORD = re.compile(r"[a-z]{3,15}(-[a-z]{2,15})?")
LICENCE = (
    "WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved. Used under the "
    "WordNet 3.0 licence (permission to use, copy, modify and distribute for any purpose "
    "without fee, provided this notice appears on all copies; provided AS IS, without "
    "warranty; the name of Princeton University may not be used in advertising)."
)


def banned_words() -> set[str]:
    """Content words of every configured synonym and effect name (all configs, schema defaults)."""
    phrases: list[str] = []
    for path in CONFIGS:
        doc = yaml.safe_load(path.read_text()) or {}
        if path.name.endswith(".schema.yaml"):
            p1 = doc["properties"]["phase1"]["properties"]["synonyms"]["properties"]
            tables = [p1[m]["default"] for m in ("image", "audio")]
            names = [e for m in doc["properties"]["effects"]["default"].values() for e in m]
        else:
            tables = list(((doc.get("phase1") or {}).get("synonyms") or {}).values())
            names = [e for m in (doc.get("effects") or {}).values() for e in (m or {})]
        for table in tables:
            names += list(table)
            for syns in table.values():
                phrases += list(syns)
        phrases += [readable(n) for n in names]
    return set().union(*(content_words(p) for p in phrases))


def read_wordnet(root: Path) -> tuple[dict, dict]:
    """(synset offset -> (head offset, lexicographer file), lemma -> (first-sense offset, tag
    count)) from data.adj and index.adj."""
    synsets = {}
    for line in (root / "data.adj").read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):
            continue  # the licence header
        f = line.split(" | ")[0].split()
        off, lexfile, kind, n = f[0], f[1], f[2], int(f[3], 16)
        k = 4 + 2 * n
        ptrs = [f[k + 1 + 4 * i : k + 5 + 4 * i] for i in range(int(f[k]))]
        head = off if kind == "a" else next((p[1] for p in ptrs if p[0] == "&"), None)
        synsets[off] = (head, lexfile)
    lemmas = {}
    for line in (root / "index.adj").read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):
            continue
        f = line.split()
        n_ptr = int(f[3])
        lemmas[f[0]] = (f[4 + n_ptr + 2], int(f[4 + n_ptr + 1]))
    return synsets, lemmas


def head_names(root: Path) -> dict[str, str]:
    """head offset -> its first lemma (the cluster's name)."""
    out = {}
    for line in (root / "data.adj").read_text(encoding="latin-1").splitlines():
        f = line.split()
        if not line.startswith("  ") and f[2] == "a":
            out[f[0]] = re.sub(r"\(.*\)$", "", f[4]).lower()
    return out


def clusters(root: Path, banned: set[str]) -> dict[str, list[str]]:
    synsets, lemmas = read_wordnet(root)
    members: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for lemma, (off, tags) in lemmas.items():
        head, lexfile = synsets[off]
        if head is None or synsets[head][1] != "00" or not WORD.fullmatch(lemma):
            continue  # not a descriptive adjective cluster, or a phrase / odd token
        if content_words(lemma) & banned:
            continue
        members[head].append((-tags, lemma))
    names, out, used = head_names(root), {}, set()
    for head in sorted(members, key=lambda h: (names[h], h)):
        words = [w for _, w in sorted(members[head])[:MAX_WORDS]]
        if len(words) < MIN_WORDS:
            continue
        name = names[head] if names[head] not in used else f"{names[head]}.{head}"
        used.add(name)
        out[name] = words
    return out


def wordnet_version() -> str:
    try:
        res = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "wordnet-base"], capture_output=True, text=True
        )
        return res.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if not (args.wordnet / "data.adj").is_file():
        raise SystemExit(f"{args.wordnet}: no data.adj (apt-get install -y wordnet-base)")
    table = clusters(args.wordnet, banned_words())
    n_words = sum(map(len, table.values()))
    head = [
        "# Phase 1 foil vocabulary: WordNet 3.0 descriptive-adjective clusters (head + similar-to",
        "# satellites; antonyms head other clusters). Generated by scripts/build_foils.py; do not",
        f"# edit. Source: Debian wordnet-base {wordnet_version()} (/usr/share/wordnet, data.adj",
        f"# and index.adj). {len(table)} clusters, {n_words} words, {MIN_WORDS}-{MAX_WORDS} per",
        "# cluster, words sharing a content word with a configured synonym or effect removed.",
        f"# Licence: {LICENCE}",
        "cluster\tword",
    ]
    rows = [f"{c}\t{w}" for c, ws in table.items() for w in ws]
    args.out.write_text("\n".join(head + rows) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(table)} clusters, {n_words} words")


if __name__ == "__main__":
    main()
