"""mclust's default grid on wide data: breast cancer (569 x 30), model by model.

Usage::

    python benchmarks/bench_mclust_wide.py                       # raw data, all 14 models
    python benchmarks/bench_mclust_wide.py --data std --models EVE,VVE
    python benchmarks/bench_mclust_wide.py --out before.json     # store the BIC table
    python benchmarks/bench_mclust_wide.py --compare before.json # max |BIC difference|

Times ``gaussmix.select(X, models=[m])`` (G = 1..9, mclust's defaults, hierarchical start
included, ``n_jobs=1``) for each model, so the iterative models' share is visible, and
the whole grid as their sum. With ``Rscript`` and mclust on the PATH (and ``--r``) it
also times R's ``Mclust(X, G = 1:9)`` on the same data.

The data: sklearn's ``load_breast_cancer().data``, as is (``raw``) or standardised
(``std``: centred, divided by the sd with n - 1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from gaussmix._mclust.select import select  # noqa: E402
from gaussmix._models.mclust import MCLUST_MODELS  # noqa: E402

R_SCRIPT = r"""
suppressMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
X <- as.matrix(read.csv(args[1]))
t <- system.time(m <- Mclust(X, G = 1:9, verbose = FALSE))[["elapsed"]]
cat(sprintf("RESULT %.3f %s %d %.6f\n", t, m$modelName, m$G, m$bic))
"""


def breast_cancer(kind):
    from sklearn.datasets import load_breast_cancer

    X = load_breast_cancer().data.astype(np.float64)
    if kind == "std":
        X = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)
    return X


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("raw", "std"), default="raw")
    parser.add_argument("--models", default=",".join(MCLUST_MODELS))
    parser.add_argument("--out", help="write the BIC table and times (JSON)")
    parser.add_argument("--compare", help="a JSON table from --out to compare with")
    parser.add_argument("--r", action="store_true", help="also time R's Mclust(X, G=1:9)")
    args = parser.parse_args(argv)

    X = breast_cancer(args.data)
    models = args.models.split(",")
    if hasattr(os, "getloadavg"):
        print("load average at the start: "
              + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    select(X[:, :3], models=["EII"], G=[1, 2], n_jobs=1)  # compile / load the kernels
    out = {}
    for m in models:
        t0 = time.perf_counter()
        res = select(X, models=[m], n_jobs=1)
        dt = time.perf_counter() - t0
        out[m] = {"time": dt, "bic": res.bic[m].to_numpy(dtype=float).tolist(),
                  "n_iter": res.n_iter[m].to_numpy(dtype=float).tolist()}
        print(f"{m}: {dt:8.2f} s  BIC {np.round(out[m]['bic'], 3).tolist()}", flush=True)
    total = sum(v["time"] for v in out.values())
    print(f"grid ({len(models)} models x G = 1..9, {args.data}): {total:.2f} s")
    if args.out:
        Path(args.out).write_text(json.dumps(out))
    if args.compare:
        old = json.loads(Path(args.compare).read_text())
        worst = 0.0
        for m in models:
            if m not in old:
                continue
            a, b = np.array(out[m]["bic"]), np.array(old[m]["bic"])
            assert np.array_equal(np.isnan(a), np.isnan(b)), m
            diff = np.abs(a - b)[~np.isnan(a)]
            worst = max(worst, float(diff.max()) if diff.size else 0.0)
            print(f"{m}: time {old[m]['time']:.2f} -> {out[m]['time']:.2f} s, "
                  f"max |BIC diff| {float(diff.max()) if diff.size else 0.0:.3g}")
        print(f"max |BIC difference| over the compared cells: {worst:.3g}")
    if args.r:
        rscript = shutil.which("Rscript")
        if rscript is None:
            print("Rscript not found: R not timed")
            return
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data.csv"
            pd.DataFrame(X).to_csv(data, index=False, float_format="%.17g")
            script = Path(tmp) / "bench.R"
            script.write_text(R_SCRIPT)
            run = subprocess.run([rscript, str(script), str(data)], capture_output=True,
                                 text=True, check=True)
            print(next(l for l in run.stdout.splitlines() if l.startswith("RESULT")))


if __name__ == "__main__":
    main()
