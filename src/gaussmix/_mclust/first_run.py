"""One line on stderr before Numba compiles mclust's kernels, so a first run is not silent.

After installing, the first ``select`` compiles the hierarchical clustering and the EM
(:mod:`.hc_fast`, :mod:`.fast_em`): half a minute to minutes on a small machine, with
nothing to show for it. Later processes load the compiled code from Numba's on-disk
cache in about a second and are told nothing.
"""

from __future__ import annotations

import sys
import threading

NOTICE = ("gaussmix: compiling mclust's EM and hierarchical clustering with Numba, once "
          "after installing (about half a minute, longer on a busy machine); later runs "
          "load the compiled code from the cache.")

_lock = threading.Lock()
_told = False


def will_compile(dispatcher) -> bool:
    """Whether calling ``dispatcher`` (a Numba function) compiles it: not yet compiled or
    loaded in this process, and no fresh entry in its on-disk cache."""
    if dispatcher.overloads:
        return False
    try:  # Numba's cache index: empty when missing, of another version, or stale
        return not dispatcher._cache._cache_file._load_index()
    except Exception:  # Numba's internals moved: stay quiet rather than say it wrongly
        return False


def announce(dispatcher) -> None:
    """Print :data:`NOTICE` once per process if calling ``dispatcher`` will compile it."""
    global _told
    with _lock:  # select's cells call in from several threads
        if _told or not will_compile(dispatcher):
            return
        _told = True
    print(NOTICE, file=sys.stderr, flush=True)
