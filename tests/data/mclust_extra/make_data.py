"""Generate the synthetic data sets of this folder (run once; see README.md)."""
import numpy as np

rng = np.random.default_rng(20240607)


def save(name, X):
    np.savetxt(f"{name}.csv", X, delimiter=",", fmt="%.17g",
               header=",".join(f"x{i + 1}" for i in range(X.shape[1])), comments="")


rot = np.array([[np.cos(0.6), -np.sin(0.6), 0], [np.sin(0.6), np.cos(0.6), 0], [0, 0, 1]])
mix3d = np.vstack([
    rng.normal(size=(150, 3)),
    rng.normal(size=(150, 3)) * np.sqrt([1.0, 3.0, 0.5]) + [4, 4, 0],
    (rng.normal(size=(100, 3)) * [2.0, 0.4, 1.0]) @ rot.T + [0, 5, 3],
])
save("mix3d", mix3d)

n = 300
comp = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
mix1d = np.choose(comp, [rng.normal(0, 1, n), rng.normal(4, 0.5, n), rng.normal(8, 2, n)])
save("mix1d", mix1d[:, None])

big2d = np.vstack([
    rng.normal(size=(800, 2)) @ [[1.0, 0.6], [0.0, 0.8]],
    rng.normal(size=(700, 2)) * [0.5, 1.5] + [5, 0],
    rng.normal(size=(600, 2)) * 0.7 + [2, 5],
    rng.normal(size=(400, 2)) @ [[2.0, -0.5], [0.0, 0.5]] + [8, 6],
])
save("big2d", big2d)

signal = np.vstack([
    rng.normal(size=(120, 2)) * 0.6 + [0, 0],
    rng.normal(size=(100, 2)) @ [[1.0, 0.5], [0.0, 0.6]] + [4, 3],
    rng.normal(size=(80, 2)) * [0.4, 1.2] + [7, -1],
])
lo, hi = signal.min(axis=0) - 1, signal.max(axis=0) + 1
noise2d = np.vstack([signal, rng.uniform(lo, hi, size=(50, 2))])
save("noise2d", noise2d)
# mclust's initial noise: the 50 uniform rows (1-based for R).
np.savetxt("noise2d_noise_rows.csv", np.arange(301, 351), fmt="%d", header="row",
           comments="")

# No more rows than columns: mclust starts from Ward's (EII) agglomeration and fits
# the spherical and diagonal models only.
save("wide", rng.normal(size=(12, 15)) + np.repeat([[0.0], [3.0], [-3.0]], 4, axis=0))
