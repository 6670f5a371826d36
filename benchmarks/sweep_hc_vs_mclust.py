"""Sweep: gaussmix's hierarchical start and BIC table against live R mclust.

Run by hand (it needs R with mclust: ``apt-get install r-base-core r-cran-mclust``), not
in CI. It draws random data sets -- n from 50 to 2000 (log-uniform), d from 1 to 8, 2 to
15 clusters of random orientation, elongation, scale, size and separation, some in a
ring, some with duplicated rows, some rounded to a grid (ties) -- and compares, per set:

* the merge sequence of ``hc(scaled_svd_transform(X), "VVV")`` with R's
  ``hc(X, modelName = "VVV", use = "SVD")`` (d > 1), every merge;
* every cell of ``select(X).bic`` with R's ``mclustBIC(X)``: both NA, or within
  ``--tol`` (0.01, as tests/test_select.py).

R runs in batches (one ``Rscript`` per ``--batch`` sets, to pay R's start-up once per
batch); its results are cached in the work directory, so a second run (another version
of gaussmix: put its ``src`` first on PYTHONPATH) compares against the same R numbers.
``--family ring --no-bic`` draws only issue 16's kind of data (1,000 rows, 14 elongated
clusters on a circle) and compares the merges only. ``--store DIR`` copies the smallest
data set of each kind of failure, with R's merges and BIC table, into DIR
(tests/data/hc_regressions/ holds the ones the tests check; ``--results FILE`` stores
from a saved run without comparing again).

    nice -n 10 env OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/sweep_hc_vs_mclust.py \\
        --n-sets 200 --workdir /tmp/hc_sweep --label after
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

R_SCRIPT = r"""
suppressMessages(library(mclust))
args <- commandArgs(TRUE)
with_bic <- args[1] == "bic"
for (f in args[-1]) {
  X <- as.matrix(read.csv(f))
  base <- sub("\\.csv$", "", f)
  ok <- tryCatch({
    if (ncol(X) > 1) {
      h <- hc(X, modelName = "VVV", use = "SVD")
      write.csv(t(h), paste0(base, "_hcPairs.csv"), row.names = FALSE)
    }
    if (with_bic) {
      b <- mclustBIC(X, verbose = FALSE)
      tab <- matrix(as.numeric(b), nrow = nrow(b), dimnames = dimnames(b))
      write.csv(tab, paste0(base, "_BIC.csv"))
    }
    TRUE
  }, error = function(e) conditionMessage(e))
  if (!isTRUE(ok)) writeLines(ok, paste0(base, "_Rerror.txt"))
}
"""


# ----------------------------------------------------------------------------- data
def _rotation(rng, d):
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def make_set(seed, family="mixed"):
    """One random data set and a description of how it was drawn.

    ``family="ring"``: issue 16's kind of data only, 1,000 rows in 14 elongated clusters
    on a circle (no duplicates, no grid).
    """
    rng = np.random.default_rng(seed)
    n = int(round(np.exp(rng.uniform(np.log(50), np.log(2000)))))
    d = int(rng.integers(1, 9))
    k = int(rng.integers(2, 16))
    ring = d == 2 and rng.random() < 0.3
    if family == "ring":
        n, d, k, ring = 1000, 2, 14, True
    sizes = rng.multinomial(n, rng.dirichlet(np.full(k, rng.uniform(0.5, 5))))
    separation = rng.uniform(0.5, 8)
    X = np.empty((n, d))
    start = 0
    for c in range(k):
        if ring:  # elongated along the circle, as the held-out case
            angle = 2 * np.pi * c / k
            mean = separation * 2 * np.array([np.cos(angle), np.sin(angle)])
            along = np.array([-np.sin(angle), np.cos(angle)])
            axes = np.column_stack([along, [along[1], -along[0]]])
        else:
            mean = rng.normal(scale=separation, size=d)
            axes = _rotation(rng, d)
        spread = np.exp(rng.uniform(np.log(0.3), np.log(3)))
        elongation = np.exp(rng.uniform(0, np.log(30), size=d))
        scales = spread * elongation / elongation.max()
        rows = rng.normal(size=(sizes[c], d)) * scales
        X[start:start + sizes[c]] = mean + rows @ axes.T
        start += sizes[c]
    X = X[rng.permutation(n)]
    duplicates = rng.random() < 0.3 and family != "ring"
    if duplicates:  # copies of some rows over others
        m = max(1, int(n * rng.uniform(0.01, 0.1)))
        X[rng.choice(n, m, replace=False)] = X[rng.choice(n, m)]
    grid = rng.random() < 0.3 and family != "ring"
    if grid:  # ties: every column on a coarse grid
        step = X.std(axis=0).mean() / rng.uniform(2, 20)
        X = np.round(X / step) * step
    info = dict(seed=seed, n=n, d=d, k=k, ring=bool(ring), duplicates=bool(duplicates),
                grid=bool(grid), separation=round(float(separation), 3))
    return X, info


# -------------------------------------------------------------------------------- R
def run_r(paths, batch, bic=True):
    """R's hcPairs and BIC table for every data set that has none cached yet."""
    done = "_BIC.csv" if bic else "_hcPairs.csv"
    todo = [p for p in paths if not p.with_name(p.stem + done).exists()
            and not p.with_name(p.stem + "_Rerror.txt").exists()]
    if not todo:
        return 0.0
    script = todo[0].parent / "mclust_sweep.R"
    script.write_text(R_SCRIPT)
    t0 = time.perf_counter()
    for start in range(0, len(todo), batch):
        chunk = todo[start:start + batch]
        subprocess.run(["Rscript", str(script), "bic" if bic else "hc", *map(str, chunk)],
                       check=True)
        print(f"  R: {start + len(chunk)}/{len(todo)} sets", file=sys.stderr)
    return time.perf_counter() - t0


# ------------------------------------------------------------------------ comparing
def compare(path, tol, bic=True):
    from gaussmix import select
    from gaussmix._mclust.hc import hc, hclass, scaled_svd_transform

    X = pd.read_csv(path).to_numpy(dtype=float)
    n, d = X.shape
    out = {}
    pairs_file = path.with_name(path.stem + "_hcPairs.csv")
    if d > 1:
        ref = pd.read_csv(pairs_file).to_numpy() - 1
        ours = hc(scaled_svd_transform(X), "VVV")
        differ = np.flatnonzero((ours != ref).any(axis=1))
        out["first_merge_diff"] = int(differ[0]) if differ.size else None
        out["clusters_at_diff"] = int(n - differ[0]) if differ.size else None
        # The starting partitions select uses (G = 2..9).
        out["partitions_equal"] = all(
            np.array_equal(hclass(ours, n, g), hclass(ref, n, g))
            for g in range(2, min(9, n) + 1))
    if not bic:
        out.update(cells=0, cells_na_mismatch=0, cells_value_mismatch=0, max_bic_diff=0.0,
                   bad_cells=[])
        return out
    ref_bic = pd.read_csv(path.with_name(path.stem + "_BIC.csv"), index_col=0)
    ours_bic = select(X, n_jobs=1).bic
    ours_bic = ours_bic.reindex(index=ref_bic.index, columns=ref_bic.columns)
    a, b = ours_bic.to_numpy(dtype=float), ref_bic.to_numpy(dtype=float)
    na_mismatch = np.isnan(a) != np.isnan(b)
    both = ~np.isnan(a) & ~np.isnan(b)
    value_mismatch = np.zeros_like(both)
    value_mismatch[both] = np.abs(a[both] - b[both]) > tol
    out["cells"] = int(a.size)
    out["cells_na_mismatch"] = int(na_mismatch.sum())
    out["cells_value_mismatch"] = int(value_mismatch.sum())
    out["max_bic_diff"] = float(np.abs(a[both] - b[both]).max()) if both.any() else 0.0
    bad = [f"{ref_bic.columns[j]},{ref_bic.index[i]}"
           for i, j in zip(*np.nonzero(na_mismatch | value_mismatch))]
    out["bad_cells"] = bad[:20]
    return out


def failure_kinds(info, res):
    """Names of what differs; empty when everything agrees."""
    kinds = []
    if res.get("first_merge_diff") is not None:
        kinds.append("partition" if not res["partitions_equal"] else "late_merge_only")
    if res["cells_na_mismatch"]:
        kinds.append("bic_na")
    if res["cells_value_mismatch"]:
        kinds.append("bic_value")
    return kinds


def store(cases, sets, results, directory):
    """Copy the smallest data set of each failure kind, with R's numbers, to directory."""
    directory.mkdir(parents=True, exist_ok=True)
    chosen = {}
    for name, res in results.items():
        for kind in failure_kinds(sets[name], res):
            if kind not in chosen or sets[name]["n"] < sets[chosen[kind]]["n"]:
                chosen[kind] = name
    for kind, name in chosen.items():
        for suffix in ("", "_hcPairs", "_BIC"):
            src = cases / f"{name}{suffix}.csv"
            if src.exists():
                shutil.copy(src, directory / f"{kind}_{name}{suffix}.csv")
        print(f"stored {kind}: {name} {sets[name]}")
    return chosen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sets", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="first data set's seed")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/hc_sweep"))
    parser.add_argument("--batch", type=int, default=25, help="data sets per Rscript")
    parser.add_argument("--tol", type=float, default=0.01, help="BIC agreement")
    parser.add_argument("--label", default="run", help="name of the results file")
    parser.add_argument("--family", choices=("mixed", "ring"), default="mixed",
                        help="mixed: everything above; ring: issue 16's kind of data")
    parser.add_argument("--no-bic", action="store_true", help="compare the merges only")
    parser.add_argument("--store", type=Path, help="copy failures here")
    parser.add_argument("--results", type=Path,
                        help="a results_*.json of an earlier run: only --store from it")
    args = parser.parse_args(argv)
    if args.results:
        saved = json.loads(args.results.read_text())
        store(args.results.parent / "cases", saved["sets"], saved["results"], args.store)
        return

    cases = args.workdir / "cases"
    cases.mkdir(parents=True, exist_ok=True)
    sets, paths = {}, []
    for seed in range(args.seed, args.seed + args.n_sets):
        name = f"set{seed:04d}"
        path = cases / f"{name}.csv"
        X, info = make_set(seed, args.family)
        if not path.exists():
            cols = [f"x{j + 1}" for j in range(X.shape[1])]
            pd.DataFrame(X, columns=cols).to_csv(path, index=False, float_format="%.17g")
        sets[name], paths = info, paths + [path]
    r_seconds = run_r(paths, args.batch, not args.no_bic)

    import gaussmix
    results, t0 = {}, time.perf_counter()
    r_failed = [p.stem for p in paths if p.with_name(p.stem + "_Rerror.txt").exists()]
    paths = [p for p in paths if p.stem not in r_failed]
    for i, path in enumerate(paths):
        results[path.stem] = compare(path, args.tol, not args.no_bic)
        if (i + 1) % 20 == 0:
            print(f"  gaussmix: {i + 1}/{len(paths)} sets", file=sys.stderr)
    py_seconds = time.perf_counter() - t0

    multi = [k for k in results if sets[k]["d"] > 1]
    merges_ok = sum(results[k]["first_merge_diff"] is None for k in multi)
    parts_ok = sum(results[k]["partitions_equal"] for k in multi)
    tables_ok = sum(not (r["cells_na_mismatch"] or r["cells_value_mismatch"])
                    for r in results.values())
    cells = sum(r["cells"] for r in results.values())
    cells_bad = sum(r["cells_na_mismatch"] + r["cells_value_mismatch"]
                    for r in results.values())
    all_ok = sum(not failure_kinds(sets[k], r) for k, r in results.items())
    summary = {
        "label": args.label, "gaussmix": str(Path(gaussmix.__file__).parent),
        "n_sets": len(results), "r_failed": r_failed, "multivariate_sets": len(multi),
        "merge_sequences_equal": merges_ok, "partitions_G2to9_equal": parts_ok,
        "bic_tables_equal": tables_ok, "bic_cells": cells, "bic_cells_differ": cells_bad,
        "sets_all_equal": all_ok, "r_seconds": round(r_seconds, 1),
        "gaussmix_seconds": round(py_seconds, 1),
    }
    print(json.dumps(summary, indent=1))
    for name, res in results.items():
        kinds = failure_kinds(sets[name], res)
        if kinds:
            print(name, ",".join(kinds), sets[name],
                  {k: res.get(k) for k in ("first_merge_diff", "clusters_at_diff",
                                           "max_bic_diff", "bad_cells")})
    out = args.workdir / f"results_{args.label}.json"
    out.write_text(json.dumps({"summary": summary, "sets": sets, "results": results},
                              indent=1))
    print(f"written {out}")
    if args.store:
        store(cases, sets, results, args.store)


if __name__ == "__main__":
    main()
