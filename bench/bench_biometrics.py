"""Face engine figures: 1:1 verification at 640×480 on one core, template throughput, memory,
and the protected-domain measurements (separation and unlinkability).

Target: one 1:1 verification (detect + align + embed + compare) at 640×480 ≤ 300 ms on one core.
Photos: the package photos of tests/support/face_images.py (fetched with pip, cached).

    .venv/bin/python -m bench.bench_biometrics
"""

from __future__ import annotations

import itertools
import resource
import time
from collections.abc import Callable

import numpy as np
from tests.support import face_derive as derive
from tests.support.face_images import IDENTITY, INDEPENDENT, FacePhotos, face_photo_dir

from anju.face.engine import FaceEngine
from anju.face.template import derive_template_key, hamming_fraction, protect


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(name: str, n: int, fn: Callable[[], object], target_ms: float | None = None) -> None:
    fn()  # warm
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        fn()
    cpu = (time.process_time() - cpu0) / n * 1e3
    wall = (time.perf_counter() - wall0) / n * 1e3
    line = f"{name:<58} {cpu:>9.1f} ms CPU  {wall:>9.1f} ms wall"
    if target_ms is not None:
        line += f"  target ≤ {target_ms:.0f} ms: {'met' if cpu <= target_ms else 'NOT met'}"
    print(line, flush=True)


def rate(name: str, n: int, fn: Callable[[], object]) -> None:
    fn()
    cpu0 = time.process_time()
    for _ in range(n):
        fn()
    cpu = time.process_time() - cpu0
    print(f"{name:<58} {n / cpu:>12,.0f} /s  {cpu / n * 1e6:>8.1f} µs CPU each", flush=True)


def d_prime(genuine: list[float], impostor: list[float]) -> float:
    g, i = np.array(genuine), np.array(impostor)
    return float(abs(i.mean() - g.mean()) / np.sqrt((g.var() + i.var()) / 2))


def d_linkability(mated: list[float], non_mated: list[float], bins: int = 20) -> float:
    """Gomez-Barrero et al. (2018) D↔_sys with equal priors, from histograms of the scores."""
    lo, hi = min(mated + non_mated), max(mated + non_mated) + 1e-9
    edges = np.linspace(lo, hi, bins + 1)
    pm, _ = np.histogram(mated, edges, density=True)
    pn, _ = np.histogram(non_mated, edges, density=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.where(pn > 0, pm / pn, np.inf)
    local = np.where(lr > 1, np.where(np.isinf(lr), 1.0, (lr - 1) / (lr + 1)), 0.0)
    width = edges[1] - edges[0]
    return float(np.sum(local * pm * width))


def main() -> None:
    photos = FacePhotos(face_photo_dir())
    base = peak_mib()
    t0 = time.perf_counter()
    engine = FaceEngine()
    print(
        f"{'engine load (models from packages)':<58} "
        f"{(time.perf_counter() - t0) * 1e3:>9.1f} ms wall"
    )

    document = derive.fit(photos["obama.jpg"], 640, 480)
    live = derive.fit(derive.crop(photos["obama3.jpg"], 0.2, 0.0, 0.85, 0.45), 640, 480)
    outcome = engine.verify(document, live)
    assert outcome.decision == "match", outcome.as_dict()  # time real work, not a refusal
    timed(
        "1:1 verify, both photos 640×480 (2× decode+detect+embed)",
        10,
        lambda: engine.verify(document, live),
    )
    reference = engine.sample(document).embedding
    timed(
        "1:1 verify, live 640×480 vs a stored reference embedding",
        10,
        lambda: engine.decide(reference, engine.sample(live).embedding),
        target_ms=300,
    )
    image = derive.pixels(live)
    timed(
        "  detect only (CenterFace, 640×480, 1 thread)", 10, lambda: engine.detector.detect(image)
    )
    face = engine.detector.detect(image)[0]
    chip = engine.embedder.align(image, face)
    timed("  align only (dlib 5-point + chip)", 20, lambda: engine.embedder.align(image, face))
    timed("  embed only (dlib ResNet, 150×150 chip)", 10, lambda: engine.embedder.embed(chip))
    print(
        f"{'peak memory (RSS) after the pipeline ran':<58} {peak_mib():>9.1f} MiB "
        f"(before models: {base:.1f} MiB)"
    )

    key = derive_template_key(bytes(32), "subject", 1)
    embedding = engine.sample(live).embedding
    rate(
        "template protect (key derivation + projection + signs)",
        2000,
        lambda: protect(embedding, derive_template_key(bytes(32), "subject", 1)),
    )
    a, b = protect(embedding, key), protect(reference, key)
    rate(
        "template compare (Hamming distance of 1024 bits)", 100_000, lambda: hamming_fraction(a, b)
    )

    # Separation and unlinkability on the package photos and derivatives of them.
    samples: dict[tuple[str, int], np.ndarray] = {}
    for name in INDEPENDENT:
        variants = [
            photos[name],
            derive.jpeg(photos[name], 40),
            derive.scaled(photos[name], 0.8),
            derive.brightness(photos[name], 0.75),
        ]
        for k, data in enumerate(variants):
            samples[(name, k)] = engine.sample(data).embedding
    keys = list(samples)
    raw_g, raw_i, prot_g, prot_i = [], [], [], []
    for x, y in itertools.combinations(keys, 2):
        same = IDENTITY[x[0]] == IDENTITY[y[0]]
        k = derive_template_key(bytes(32), IDENTITY[x[0]], 1)
        (raw_g if same else raw_i).append(float(np.linalg.norm(samples[x] - samples[y])))
        (prot_g if same else prot_i).append(
            hamming_fraction(protect(samples[x], k), protect(samples[y], k))
        )
    print(
        f"\nseparation on {len(keys)} samples of {len({IDENTITY[n] for n in INDEPENDENT})} "
        "people "
        f"({len(raw_g)} genuine, {len(raw_i)} impostor pairs):"
    )
    for label, genuine, impostor in (
        ("raw Euclidean", raw_g, raw_i),
        ("protected Hamming", prot_g, prot_i),
    ):
        print(
            f"  {label:<18} genuine {min(genuine):.3f}–{max(genuine):.3f}, "
            f"impostor {min(impostor):.3f}–{max(impostor):.3f}, "
            f"d' = {d_prime(genuine, impostor):.2f}"
        )
    secrets_ = [bytes([i]) * 32 for i in range(6)]
    mated, non_mated = [], []
    for s1, s2 in itertools.combinations(secrets_, 2):  # two deployments (or two versions)
        for x in keys:
            k1, k2 = derive_template_key(s1, "p", 1), derive_template_key(s2, "p", 1)
            mated.append(hamming_fraction(protect(samples[x], k1), protect(samples[x], k2)))
        for x, y in itertools.combinations(keys, 2):
            if IDENTITY[x[0]] != IDENTITY[y[0]]:
                k1, k2 = derive_template_key(s1, "p", 1), derive_template_key(s2, "p", 1)
                non_mated.append(hamming_fraction(protect(samples[x], k1), protect(samples[y], k2)))
    print(
        f"unlinkability across keys: mated {np.mean(mated):.3f}±{np.std(mated):.3f} "
        f"(n={len(mated)}), non-mated {np.mean(non_mated):.3f}±{np.std(non_mated):.3f} "
        f"(n={len(non_mated)}), D↔sys = {d_linkability(mated, non_mated):.3f} "
        "(0 = unlinkable, 1 = fully linkable)"
    )
    # What the estimator gives for two sets that are unlinkable by construction (both non-mated,
    # the first as small as the mated set): the noise floor of D↔ at these sample sizes.
    rng = np.random.default_rng(0)
    shuffled = list(rng.permutation(non_mated))
    floor = d_linkability(shuffled[: len(mated)], shuffled[len(mated) :])
    print(f"  D↔sys noise floor at n={len(mated)} (non-mated vs non-mated): {floor:.3f}")


if __name__ == "__main__":
    main()
