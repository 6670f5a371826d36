"""The background process that fills Numba's cache (see :mod:`.first_run`).

``python -m gaussmix._mclust.compile_cache [LOCK]`` runs what ``select`` compiles on
tiny data, so that the on-disk cache holds every kernel, then removes the lock file
``LOCK`` that :func:`.first_run.compile_in_background` created. Nothing imports this
module: it is only ever run.
"""

from __future__ import annotations

import os
import sys


def compile_everything():
    """Select on tiny 2-D and 1-D data with the compiled backend: every kernel."""
    import numpy as np

    from .select import select

    rng = np.random.default_rng(0)
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
