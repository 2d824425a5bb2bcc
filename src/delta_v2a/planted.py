"""The planted world: stand-in embedders whose geometry is known by construction (issue 25).

Why: no run of the real pipeline can show that it finds a right answer, because nobody knows
the right answer for CLIP and CLAP. Here it is built in. Each embedding is a few physical
features of the medium (sharpness, brightness, saturation, contrast of a photo; mid and high
band energy, loudness, distortion, reverberance of a clip) put through a FIXED seeded rotation,
plus an effect-invariant per-file nuisance vector so files differ. The text towers are bags of
words in the SAME rotated spaces: a word names a concept, and a concept is the direction of a
physical change. Blur words and low-pass words share the "soft" concept, brightness words and
high-shelf words the "bright" concept; every other concept has a direction in its own modality
only (the other tower gives it a text-only direction no medium moves along). So Phase 1 should
find exactly (blur, lpf) and (brightness, highshelf) and nothing else; docs/methods.md §9.

The ``planted`` model family loads these (``models.family: planted`` in a config; the family
module is delta_v2a.embedders.planted). Every artifact made with them is marked NOT SCIENCE
(ModelInfo.tiny, provenance.PLANTED_NOTE). An audio model named ``...audio-spread``
(config/planted.yaml's ``planted:audio-spread``) gives each song its own sensitivity
(:func:`song_sensitivity`, Phase 3's planted world).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

import numpy as np

from delta_v2a.constants import IMAGE_SIZE, WINDOW_SAMPLES
from delta_v2a.constants import SAMPLE_RATE as SAMPLING_RATE
from delta_v2a.embedders.base import ModelInfo

__all__ = [
    "CONCEPTS",
    "PLANTED_DIM",
    "PLANTED_PAIRS",
    "PlantedAudioEmbedder",
    "PlantedImageEmbedder",
    "audio_features",
    "concept_of",
    "image_features",
    "song_sensitivity",
]

PLANTED_DIM = 64
#: bump when a feature, constant or word list changes what an embedding is (goes in the note)
PLANTED_VERSION = 1
PLANTED_NOTE = (
    f"planted embedder v{PLANTED_VERSION} (delta_v2a.planted): the answer is built in; "
    "results test the pipeline and are not science"
)
#: the pairs the construction plants (image effect, audio effect), for tests and reports
PLANTED_PAIRS = (("blur", "lpf"), ("brightness", "highshelf"))

_LUMA = np.array([0.299, 0.587, 0.114])
# Feature centres (about the demo media's means) and weights: fixed constants, never fitted at
# run time, so an embedding depends on its own input only. Weights bring each effect's largest
# change to about one unit, so no single feature swamps the unit-normalised embedding.
_IMAGE_NAMES = ("sharpness", "brightness", "saturation", "contrast")
_IMAGE_CENTRE = np.array([-1.5, -1.0, -1.5, -0.75])
_IMAGE_WEIGHT = np.array([0.3, 3.0, 1.5, 1.0])
_AUDIO_NAMES = ("mids", "air", "loudness", "distortion", "reverberance")
_AUDIO_CENTRE = np.array([0.1, -5.4, -1.6, -0.96, -0.5])
_AUDIO_WEIGHT = np.array([1.0, 0.5, 1.0, 2.0, 2.0])
_NUISANCE_DIMS = 16
_NUISANCE_WEIGHT = 2.0
_TEXT_ONLY_COLUMN = 40  # first basis column that no medium moves along (text-only concepts)
_WORD_NOISE = 0.5  # word-specific spread around a concept (synonyms are a cluster, not one point)
#: SD of the log sensitivity across songs in ``planted:audio-spread`` (the suite's power
#: simulation draws per-clip sensitivities log-normal with this SD too)
SENSITIVITY_SPREAD = 0.45
# The song's sensitivity reads its nuisance along one fixed seeded direction, standardised by
# that projection's mean and SD over the 60 planted songs (demo --songs 60; measured once and
# fixed, never fitted at run time): z is about N(0, 1) across songs (skew 0.4), and the
# study's effects move it by <= 0.05 SD (lpf 800 Hz, highshelf +12 dB, saturation, reverb).
_SENSITIVITY_SEED = 25_003
_SENSITIVITY_CENTRE, _SENSITIVITY_SD = -0.098, 0.160

#: concept -> its words. One meaning per word, whatever the config's lists say: "dull" and
#: "muted" are soft (as in "muffled"), "saturated" is left out (colour or distortion: a random
#: word). Multi-word and hyphenated entries are matched as token runs ("out of focus").
CONCEPTS: dict[str, tuple[str, ...]] = {
    "soft": (
        "blurry", "blurred", "blur", "out of focus", "out-of-focus", "fuzzy", "soft-focus",
        "soft", "hazy", "smeared", "unsharp", "muffled", "dull", "muted", "dark", "low-passed",
        "underwater-sounding", "dampened", "lo-fi", "warm", "murky",
    ),
    "bright": (
        "bright", "brightened", "overexposed", "light", "washed-out", "luminous", "sunlit",
        "crisp", "airy", "sparkling", "treble-boosted", "shimmering", "brilliant",
    ),
    "colourful": (
        "vivid", "colorful", "colourful", "vibrant", "oversaturated", "intensely colored",
        "garish",
    ),
    "flat": ("low-contrast", "flat", "faded", "lifeless", "grey-toned"),
    "distorted": ("distorted", "overdriven", "gritty", "crunchy", "driven", "tape-saturated"),
    "spacious": (
        "reverberant", "echoey", "spacious", "cavernous", "roomy", "ambient", "cathedral-like",
    ),
}  # fmt: skip

#: per tower: concept -> (feature weights) on that tower's physical axes, or None: text-only.
#: The image tower's "soft" is less sharpness; the audio tower's is less air and fewer mids.
_CONCEPT_AXES: dict[str, dict[str, tuple[float, ...] | None]] = {
    "image": {
        "soft": (-1, 0, 0, 0),
        "bright": (0, 1, 0, 0),
        "colourful": (0, 0, 1, 0),
        "flat": (0, 0, 0, -1),
        "distorted": None,
        "spacious": None,
    },
    "audio": {
        "soft": (-0.25, -1, 0, 0, 0),
        "bright": (0, 1, 0, 0, 0),
        "colourful": None,
        "flat": None,
        "distorted": (0, 0, 0, 1, 0),
        "spacious": (0, 0, 0, 0, 1),
    },
}
_SEED = {"image": 25_001, "audio": 25_002}


def _tokens(text: str) -> list[str]:
    """Lower-case alphanumeric tokens: "A soft-focus photo" -> ["a", "soft", "focus", "photo"]."""
    return "".join(ch if ch.isalnum() else " " for ch in text.lower()).split()


_PHRASES = {tuple(_tokens(w)): c for c, words in CONCEPTS.items() for w in words}
_LONGEST = max(len(p) for p in _PHRASES)


@functools.lru_cache(maxsize=1)
def _foil_phrases() -> dict[tuple[str, ...], str]:
    """Phase 1's foil words -> their cluster. Each foil cluster is a concept of the planted text
    towers too (a random direction, hash-seeded by the cluster's name, words spread around it
    as a synonym list's are), so foil sets are as coherent as synonym lists, as real WordNet
    clusters are meant to be. A word with a planted meaning keeps it."""
    from delta_v2a.phase1.foils import load_foils

    return {
        tuple(_tokens(w)): f"foil:{c}"
        for c, words in load_foils().items()
        for w in words
        if tuple(_tokens(w)) not in _PHRASES
    }


def concept_of(word: str) -> str | None:
    """The concept a word or phrase names, or None (a word with no planted meaning)."""
    return _PHRASES.get(tuple(_tokens(word)))


@functools.lru_cache(maxsize=8)
def _basis(tower: str, dim: int) -> np.ndarray:
    """The tower's fixed random rotation (orthonormal columns), seeded: same on every machine."""
    rng = np.random.default_rng(_SEED[tower])
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))  # sign-fixed, so the basis does not depend on LAPACK's choice


@functools.lru_cache(maxsize=1 << 16)
def _word_vector(tower: str, phrase: tuple[str, ...], dim: int) -> np.ndarray:
    """A unit vector per word from a hash of (tower, word): stable across runs and processes."""
    digest = hashlib.sha256(f"{tower}|{' '.join(phrase)}".encode()).digest()
    v = np.random.default_rng(int.from_bytes(digest[:8], "little")).standard_normal(dim)
    return v / np.linalg.norm(v)


@functools.lru_cache(maxsize=8)
def _concept_directions(tower: str, dim: int) -> dict[str, np.ndarray]:
    """Unit direction of every concept in one tower: on its physical axes, or text-only."""
    q = _basis(tower, dim)
    out = {}
    for k, (concept, axes) in enumerate(_CONCEPT_AXES[tower].items()):
        if axes is None:
            v = q[:, _TEXT_ONLY_COLUMN + k]
        else:
            v = q[:, : len(axes)] @ np.asarray(axes, dtype=np.float64)
        out[concept] = v / np.linalg.norm(v)
    return out


def _phrases(text: str) -> list[tuple[str, ...]]:
    """Greedy longest match of concept phrases over the tokens; other tokens stand alone."""
    toks, out, i = _tokens(text), [], 0
    while i < len(toks):
        for n in range(min(_LONGEST, len(toks) - i), 0, -1):
            if n == 1 or (run := tuple(toks[i : i + n])) in _PHRASES or run in _foil_phrases():
                out.append(tuple(toks[i : i + n]))
                i += n
                break
    return out


def embed_text(tower: str, text: str, dim: int = PLANTED_DIM) -> np.ndarray:
    """Bag of words: sum of word vectors (a concept word = its concept + word noise), unit norm.

    Why a bag: the difference ``embed(effect prompt) - embed(neutral prompt)`` is then the added
    word's vector plus a shrink of the shared part (which Phase 1's centring removes).
    """
    directions = _concept_directions(tower, dim)
    total = np.zeros(dim)
    for phrase in _phrases(text):
        noise = _word_vector(tower, phrase, dim)
        concept = _PHRASES.get(phrase)
        if concept is None and phrase in _foil_phrases():
            foil = _word_vector(tower, ("concept", _foil_phrases()[phrase]), dim)
            total += foil + _WORD_NOISE * noise
            continue
        total += noise if concept is None else directions[concept] + _WORD_NOISE * noise
    norm = np.linalg.norm(total)
    return total / norm if norm > 0 else total


# --------------------------------------------------------------------------- physical features


def image_features(image: np.ndarray) -> np.ndarray:
    """(sharpness, brightness, saturation, contrast) of float RGB in [0, 1], each a log ratio.

    Why these ratios: each effect moves one of them and leaves the others nearly alone.
    Sharpness is Laplacian energy per luma variance (blur lowers it; brightness and contrast
    scale both parts alike), brightness the mean luma, saturation the mean chroma per luma SD
    (contrast scales both), contrast the luma SD per mean (brightness scales both).
    """
    x = np.asarray(image, dtype=np.float64)
    luma = x @ _LUMA
    lap = 4 * luma[1:-1, 1:-1] - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2]
    lap -= luma[1:-1, 2:]
    var = float(luma.var()) + 1e-6
    mean = float(luma.mean())
    chroma = float(np.abs(x - luma[..., None]).mean())
    return np.array(
        [
            np.log(float(np.mean(lap**2)) / var + 1e-4),
            np.log(mean + 1e-2),
            np.log(chroma / np.sqrt(var) + 0.05),
            np.log(np.sqrt(var) / (mean + 1e-2) + 1e-2),
        ]
    )


def image_nuisance(image: np.ndarray) -> np.ndarray:
    """Unit 16-vector: the 4x4 block means of luma, standardised. Tells files apart; no effect
    of the study moves it much (brightness/contrast are affine in luma, blur keeps block means,
    saturation keeps luma)."""
    luma = np.asarray(image, dtype=np.float64) @ _LUMA
    h, w = (luma.shape[0] // 4) * 4, (luma.shape[1] // 4) * 4
    blocks = luma[:h, :w].reshape(4, h // 4, 4, w // 4).mean(axis=(1, 3)).ravel()
    blocks = blocks - blocks.mean()
    norm = np.linalg.norm(blocks)
    return blocks / norm if norm > 1e-9 else np.zeros(_NUISANCE_DIMS)


def _band(power: np.ndarray, freqs: np.ndarray, lo: float, hi: float) -> float:
    """Summed power in [lo, hi) Hz."""
    return float(power[(freqs >= lo) & (freqs < hi)].sum())


def audio_features(clip: np.ndarray, sr: int = SAMPLING_RATE) -> np.ndarray:
    """(mids, air, loudness, distortion, reverberance) of a mono window, logs of ratios.

    Why: mids (0.5-4 kHz vs 50-500 Hz) and air (above 4 kHz vs below) are what a low-pass takes
    and a high shelf adds; distortion is minus the log median crest factor of 20 ms frames
    (soft clipping flattens peaks); reverberance is the lag-100 ms autocorrelation of the frame
    loudness minus the log spectral flux (a room smears onsets and holds notes).
    """
    y = np.asarray(clip, dtype=np.float64)
    power = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(y.size, 1 / sr)
    low, mid, high = (_band(power, freqs, a, b) for a, b in ((50, 500), (500, 4e3), (4e3, 16e3)))
    hop = sr // 50
    frames = y[: y.size // hop * hop].reshape(-1, hop)
    rms = np.sqrt((frames**2).mean(axis=1)) + 1e-6
    crest = float(np.median(np.abs(frames).max(axis=1) / rms))
    log_rms = np.log(rms)
    lagged = np.corrcoef(log_rms[:-5], log_rms[5:])[0, 1] if log_rms.std() > 1e-9 else 0.0
    return np.array(
        [
            np.log(mid / (low + 1e-12) + 1e-3),
            np.log(high / (low + mid + 1e-12) + 1e-4),
            np.log(float(np.sqrt(np.mean(y**2))) + 1e-6),
            -np.log(crest + 1e-6),
            float(np.nan_to_num(lagged)) - np.log(_spectral_flux(y, sr) + 1e-6),
        ]
    )


def _spectral_flux(y: np.ndarray, sr: int, n: int = 4096) -> float:
    """Mean absolute frame-to-frame change of 16 log band energies in 150 Hz - 1.5 kHz (Hann
    frames of n samples every 2n): how fast the sound changes; a room slows it down. Bands, not
    bins, so hiss does not dominate; below 1.5 kHz, so the filters barely touch it."""
    y = np.pad(y, (0, max(0, 2 * n - y.size)))
    starts = np.arange(0, y.size - n + 1, 2 * n)
    frames = np.stack([y[s : s + n] for s in starts]) * np.hanning(n)
    spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    band = np.digitize(np.fft.rfftfreq(n, 1 / sr), np.geomspace(150, 1500, 17))
    energy = np.stack([spec[:, band == k].sum(axis=1) for k in range(1, 17)], axis=1)
    return float(np.mean(np.abs(np.diff(np.log(energy + 1e-10), axis=0))))


def audio_nuisance(clip: np.ndarray, sr: int = SAMPLING_RATE) -> np.ndarray:
    """Unit 16-vector: log energies of 16 log-spaced bands in 60-600 Hz, centred. Tells pieces
    apart; the study's effects act above this range (lpf's lowest cutoff is 800 Hz) or on
    level, which the centring removes."""
    y = np.asarray(clip, dtype=np.float64)
    power = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(y.size, 1 / sr)
    edges = np.geomspace(60, 600, _NUISANCE_DIMS + 1)
    pairs = zip(edges[:-1], edges[1:], strict=True)
    bands = np.log(np.array([_band(power, freqs, a, b) for a, b in pairs]) + 1e-9)
    bands -= bands.mean()
    norm = np.linalg.norm(bands)
    return bands / norm if norm > 1e-9 else np.zeros(_NUISANCE_DIMS)


def song_sensitivity(nuisance: np.ndarray, spread: float) -> float:
    """How strongly one song's embedding responds to an effect: ``exp(spread * z)``, with z the
    song's effect-invariant nuisance along a fixed direction, about N(0, 1) across songs, so the
    sensitivity is log-normal across songs (as real effect sensitivities are: a dark song
    barely moves under a low-pass). ``spread`` 0 is one constant sensitivity (the twin).

    Why from the nuisance: an embedder sees one clip at a time, so the clean and the processed
    clip of a song must get the same sensitivity from their content alone; the nuisance is
    that content (and it is in the embedding, so a decoder can read it).
    """
    if spread == 0:
        return 1.0
    rng = np.random.default_rng(_SENSITIVITY_SEED)
    d = rng.standard_normal(_NUISANCE_DIMS)
    d -= d.mean()
    z = float(np.asarray(nuisance) @ (d / np.linalg.norm(d))) - _SENSITIVITY_CENTRE
    return float(np.exp(spread * z / _SENSITIVITY_SD))


# --------------------------------------------------------------------------- embedders

_NUISANCE_COLUMN = 8  # nuisance lives in basis columns 8..23, apart from the physical axes


class _PlantedEmbedder:
    """What both planted towers share, with the interface of embedders.base.Embedder:
    ``prepare`` (one item -> its raw vector), ``embed_prepared``, ``embed``, ``embed_texts``.

    Why no torch: the features are a few numpy reductions; a model call would add nothing but
    time. Everything runs on the CPU whatever device the config names (info.device says so).
    """

    tower: str
    centre: np.ndarray
    weight: np.ndarray

    def __init__(self, name: str, normalize: bool = True, dim: int = PLANTED_DIM) -> None:
        self.dim = dim
        self.normalize = normalize
        self.info = ModelInfo(
            name_or_path=name,
            resolved_path=None,
            dtype="fp32",
            device="cpu",
            dim=dim,
            tiny=True,  # "not a real model": provenance marks every artifact NOT SCIENCE
            note=PLANTED_NOTE,
            family="planted",
            input_size=getattr(self, "input_size", None),
            sampling_rate=getattr(self, "sampling_rate", None),
            window_samples=getattr(self, "window_samples", None),
        )

    def features(self, item: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def nuisance(self, item: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def check(self, index: int, item: np.ndarray) -> np.ndarray:
        """The item as the real tower would accept it (same shape rules), else ValueError."""
        raise NotImplementedError

    def sensitivity(self, nuisance: np.ndarray) -> float:
        """The item's gain on its physical features (1: every item responds alike)."""
        return 1.0

    def prepare(self, item: np.ndarray, index: int = 0) -> np.ndarray:
        """Raw (unnormalised) embedding: rotated weighted features (times the item's
        sensitivity) + rotated nuisance."""
        x = self.check(index, item)
        q = _basis(self.tower, self.dim)
        k = self.centre.size
        nuisance = self.nuisance(x)
        feats = self.sensitivity(nuisance) * self.weight * (self.features(x) - self.centre)
        nuis = q[:, _NUISANCE_COLUMN : _NUISANCE_COLUMN + _NUISANCE_DIMS] @ nuisance
        return q[:, :k] @ feats + _NUISANCE_WEIGHT * nuis

    def embed_prepared(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        """Stack prepared rows as float32, unit-normalised when ``normalize`` (as CLIP/CLAP)."""
        if not len(prepared):
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.stack([np.asarray(p, dtype=np.float64) for p in prepared])
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)

    def embed(self, items: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """(n, dim) float32 embeddings; ``batch_size`` is checked but changes nothing (no model
        batches: every row depends on its own item only)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return self.embed_prepared([self.prepare(x, i) for i, x in enumerate(items)])

    def embed_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(n, dim) float32 bag-of-words embeddings (unit norm, as CLIP/CLAP text features)."""
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not a single string")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        rows = [embed_text(self.tower, t, self.dim) for t in texts]
        return np.array(rows, dtype=np.float32).reshape(len(rows), self.dim)


class PlantedImageEmbedder(_PlantedEmbedder):
    """Planted CLIP stand-in: 224 px float RGB in [0, 1] -> ``dim``-d embedding."""

    tower = "image"
    centre = _IMAGE_CENTRE
    weight = _IMAGE_WEIGHT
    input_size = IMAGE_SIZE

    def check(self, index: int, item: np.ndarray) -> np.ndarray:
        arr = np.asarray(item)
        size = self.input_size
        if arr.shape != (size, size, 3) or not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(
                f"image {index}: expected float ({size}, {size}, 3), got {arr.dtype} {arr.shape}"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"image {index}: contains NaN or inf")
        return arr

    def features(self, item: np.ndarray) -> np.ndarray:
        return image_features(item)

    def nuisance(self, item: np.ndarray) -> np.ndarray:
        return image_nuisance(item)

    def embed_images(self, images: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
        return self.embed(images, batch_size)


class PlantedAudioEmbedder(_PlantedEmbedder):
    """Planted CLAP stand-in: one 10 s window of 48 kHz mono float -> ``dim``-d embedding."""

    tower = "audio"
    centre = _AUDIO_CENTRE
    weight = _AUDIO_WEIGHT
    sampling_rate = SAMPLING_RATE
    window_samples = WINDOW_SAMPLES

    @property
    def sensitivity_spread(self) -> float:
        """log-SD of the per-song sensitivity across songs: ``SENSITIVITY_SPREAD`` for a model
        named ``...audio-spread`` (config/planted.yaml), else 0 (one constant sensitivity)."""
        return SENSITIVITY_SPREAD if self.info.name_or_path.endswith("audio-spread") else 0.0

    def sensitivity(self, nuisance: np.ndarray) -> float:
        return song_sensitivity(nuisance, self.sensitivity_spread)

    def check(self, index: int, item: np.ndarray) -> np.ndarray:
        arr = np.asarray(item)
        if arr.shape != (self.window_samples,) or not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(
                f"clip {index}: expected a float mono window of {self.window_samples} samples, "
                f"got {arr.dtype} {arr.shape}"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"clip {index}: contains NaN or inf")
        return arr

    def features(self, item: np.ndarray) -> np.ndarray:
        return audio_features(item, self.sampling_rate)

    def nuisance(self, item: np.ndarray) -> np.ndarray:
        return audio_nuisance(item, self.sampling_rate)

    def embed_audio(self, clips: Sequence[np.ndarray], batch_size: int = 8) -> np.ndarray:
        return self.embed(clips, batch_size)
