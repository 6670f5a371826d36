"""The background process that fills Numba's cache (see :mod:`._first_run`).

``python -m gaussmix._compile_cache [LOCK]`` runs the compiled E-step and what
``select`` compiles on tiny data, so that the on-disk cache holds every kernel, then
removes the lock file ``LOCK`` that :func:`._first_run.compile_in_background` created.
Nothing imports this module: it is only ever run.
"""

from __future__ import annotations

import os
import sys


def compile_everything():
    """The compiled E-step, start (k-means on a sample, its labels' statistics), per-row
    results, and the NumPy kernel's column log-sum-exp and sparse scatter staging, in
    float64 and float32 (first: a plain fit waits on them), then select on tiny 2-D and
    1-D data with the compiled backend."""
    import numpy as np

    from ._engine import compiled
    from ._engine.estep import estep_chunk
    from ._engine.kmeans import kmeans_centres
    from ._engine.params import params_from_precisions
    from ._mclust.select import select

    os.environ["GAUSSMIX_KERNEL"] = "numba"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    labels = np.zeros(40, dtype=int)
    for family, prec in (("full", np.eye(2)[None]), ("diag", np.ones((1, 2))),
                        ("tied", np.eye(2))):
        params = params_from_precisions(np.ones(1), np.zeros((1, 2)), prec, family)
        for dtype in (np.float64, np.float32):
            estep_chunk(X.astype(dtype), None, params, family)
            compiled.label_stats(X.astype(dtype), labels, None, family, 1)  # the start
            compiled.label_stats(X.astype(dtype), None, None, family, 1,
                                 centres=np.zeros((1, 2)))
            compiled.per_row(X.astype(dtype), params, np.zeros(2), "score")  # predict
    kmeans_centres(X, None, 2, 1, np.random.RandomState(0), work=np.inf)  # large starts
    count, gather = compiled.sparse_kernels(np.inf)  # the NumPy kernel's sparse scatter
    for dtype in (np.float64, np.float32):
        for resp in (np.zeros((2, 4), dtype=dtype), np.zeros((2, 8), dtype=dtype)[:, :4]):
            count(resp, resp, 2.0**-100, np.zeros((2, 2)))
            gather(resp, 2.0**-100, np.zeros((2, 1, 4), dtype=dtype), 0,
                   np.zeros((4, 1), dtype=dtype), np.zeros(4, dtype=np.intp), 0)
    responsibilities = compiled.responsibilities_kernel(np.inf)  # the NumPy kernel's
    for dtype in (np.float64, np.float32):
        responsibilities(np.zeros((2, 3), dtype=dtype), np.empty(3, dtype=dtype),
                         np.empty(3, dtype=dtype), np.empty((3, 256)),
                         np.empty(256, dtype=np.int64))
    for X in (rng.normal(size=(40, 2)), rng.normal(size=(40, 1))):
        select(X, G=[1, 2, 3], backend="numba", n_jobs=1)


if __name__ == "__main__":
    try:
        if hasattr(os, "nice"):  # the run that started us goes first on a busy machine
            os.nice(10)
        compile_everything()
    finally:
        if len(sys.argv) > 1:
            try:
                os.unlink(sys.argv[1])
            except OSError:
                pass
