"""Regenerate the synthetic data sets of this folder (numpy, fixed seeds).

``readback_<seed>``: small mixtures of elongated clusters on which the exact VVV criterion
and mclust's (which reads older clusters' scatter back from a corrupted factor, see
gaussmix._mclust.hc.stored_scatter) merge differently. ``ring``: 1,000 rows in 14
elongated clusters on a circle, the kind of data of issue 16's held-out case.
The sweep's failures (benchmarks/sweep_hc_vs_mclust.py --store) are copied in as they are.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def readback(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 60))
    d = int(rng.integers(2, 4))
    k = int(rng.integers(2, 6))
    blocks = [rng.normal(size=(n // k + 1, d)) * np.exp(rng.uniform(-2, 1, d))
              @ np.linalg.qr(rng.normal(size=(d, d)))[0] + rng.normal(scale=3, size=d)
              for _ in range(k)]
    return np.vstack(blocks)[:n]


def ring(seed=20, n=1000, k=14):
    rng = np.random.default_rng(1000 + seed)
    sizes = rng.multinomial(n, np.ones(k) / k)
    radius = rng.uniform(3, 12)
    long_, short = rng.uniform(0.8, 3), rng.uniform(0.05, 0.5)
    rng.uniform(0, np.pi)  # a tilt, unused for an even seed
    out = []
    for c in range(k):
        angle = 2 * np.pi * c / k
        centre = radius * np.array([np.cos(angle), np.sin(angle)])
        a = angle + np.pi / 2
        along, across = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
        pts = rng.normal(size=(sizes[c], 2)) * [long_, short]
        out.append(centre + pts[:, :1] * along + pts[:, 1:] * across)
    X = np.vstack(out)
    return X[rng.permutation(n)]


def save(name, X):
    header = ",".join(f"x{j + 1}" for j in range(X.shape[1]))
    np.savetxt(HERE / f"{name}.csv", X, delimiter=",", header=header, comments="",
               fmt="%.17g")


if __name__ == "__main__":
    for seed in (12, 199, 233, 345):
        save(f"readback_{seed}", readback(seed))
    save("ring", ring())
