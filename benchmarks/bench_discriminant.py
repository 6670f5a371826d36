"""MixtureDiscriminant.fit against R's MclustDA (and EDDA), timed in one run.

Usage::

    python benchmarks/bench_discriminant.py                # iris, banknote, diabetes, thyroid
    python benchmarks/bench_discriminant.py --repeats 7 --data iris,banknote

For each data set of ``tests/data/mclust_da`` it times ``fit`` of the default classifier
(mclust's defaults: 14 models, G = 1..5 per class for MclustDA) and R's
``MclustDA(X, class)``, timed inside R with ``system.time`` so R's start-up is not
counted. The two alternate repeat by repeat so both see the same machine load; the
script prints the medians, the ratio R / gaussmix (above 1: gaussmix is faster) and
whether both chose the same per-class models. gaussmix's first fit (Numba's compile
or cache load) is run once before timing. R runs only when ``Rscript`` with mclust is
on the PATH. Run it with OMP_NUM_THREADS=1 for single-threaded BLAS on both sides.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "mclust_da"

R_CODE = r"""
suppressMessages(library(mclust))
d <- read.csv("{path}")
X <- data.matrix(d[, setdiff(names(d), "class")]); y <- factor(d$class)
t <- system.time(m <- MclustDA(X, y, modelType = "{type}", verbose = FALSE))[["elapsed"]]
cat(t, paste(sapply(m$models, function(x) paste0(x$modelName, ",", x$G)), collapse = " "), "\n")
"""


def time_r(path, model_type):
    out = subprocess.run(["Rscript", "-e", R_CODE.format(path=path, type=model_type)],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), " ".join(out[1:])


def time_ours(X, y, model_type, n_jobs=None):
    from gaussmix import MixtureDiscriminant

    start = time.perf_counter()
    clf = MixtureDiscriminant(model_type=model_type, n_jobs=n_jobs).fit(X, y)
    seconds = time.perf_counter() - start
    return seconds, " ".join(f"{m.model},{m.G}" for m in clf.class_models_)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="iris,banknote,diabetes,thyroid")
    parser.add_argument("--types", default="MclustDA,EDDA")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="gaussmix's n_jobs (default None: one thread, as R runs)")
    args = parser.parse_args(argv)
    have_r = shutil.which("Rscript") is not None
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} "
          f"CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"gaussmix n_jobs={args.n_jobs}; "
          f"R: {'yes' if have_r else 'not found, gaussmix only'}")
    rows = []
    for name in args.data.split(","):
        path = DATA / f"{name}.csv"
        frame = pd.read_csv(path)
        X = frame.drop(columns="class").to_numpy(float)
        y = frame["class"].astype(str).to_numpy()
        for model_type in args.types.split(","):
            time_ours(X, y, model_type, args.n_jobs)  # the compiled code loaded once
            ours, theirs = [], []
            for _ in range(args.repeats):
                t, our_models = time_ours(X, y, model_type, args.n_jobs)
                ours.append(t)
                if have_r:
                    t, r_models = time_r(path, model_type)
                    theirs.append(t)
            med = statistics.median(ours)
            r_med = statistics.median(theirs) if theirs else float("nan")
            # R names the classes in the data's order, gaussmix sorted: compare as sets.
            same = (sorted(our_models.split()) == sorted(r_models.split())) if have_r \
                else None
            rows.append((name, model_type, X.shape, med, r_med, r_med / med, same))
            print(f"{name:9s} {model_type:8s} n={X.shape[0]:4d} d={X.shape[1]:2d}  "
                  f"gaussmix {med:7.3f} s  R {r_med:7.3f} s  R/gaussmix {r_med / med:5.2f}x"
                  f"  same models: {same}", flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
