"""The first run after installing: compile the Numba kernels without making anyone wait.

The compiled E-step (:mod:`._engine.compiled`) and mclust's hierarchical clustering and
EM (:mod:`._mclust.hc_fast`, :mod:`._mclust.fast_em`) take half a minute to minutes to
compile on a small machine; later processes load them from Numba's on-disk cache in
about a second. So a fit or ``select`` that finds the cache cold (with
``backend="auto"``) runs on the NumPy path (the same numbers, to rounding) and starts a
separate process that compiles them into the cache, saying so in one line; the next run
uses the compiled code. ``backend="numba"`` compiles in the call, announced by
:data:`NOTICE`. ``GAUSSMIX_BACKGROUND_COMPILE=0`` turns the background compilation off
(cold calls with ``backend="auto"`` then compile in the call).

The compiling process is ``python -m gaussmix._compile_cache``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time

NOTICE = ("gaussmix: compiling its kernels with Numba, once after installing (about "
          "half a minute, longer on a busy machine); later runs load the compiled code "
          "from the cache.")

BACKGROUND_NOTICE = (
    "gaussmix: compiling its kernels (the E-step, mclust's EM and hierarchical "
    "clustering) with Numba in the background, once after installing (about half a "
    "minute); this run uses the NumPy path (the same numbers), later runs the compiled "
    "code.")

# A compiling process older than this is taken for dead (its lock file left behind).
_STALE_SECONDS = 900

_lock = threading.Lock()
_told = False
_started = False


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


def cold(*dispatchers) -> bool:
    """Whether calling any of ``dispatchers`` (Numba functions) would compile it."""
    return any(will_compile(d) for d in dispatchers)


def compile_in_background() -> bool:
    """Start the compiling process unless one runs already (here or in another process);
    False when background compilation is turned off, so the caller compiles itself."""
    global _started
    if (os.environ.get("GAUSSMIX_BACKGROUND_COMPILE", "1") == "0"
            or not hasattr(os, "posix_spawn")):  # not on Windows: compile in the call
        return False
    with _lock:
        if not _started:
            _started = True
            if _claim(_lock_path()):
                _spawn([sys.executable, "-m", "gaussmix._compile_cache",
                        _lock_path()])
            print(BACKGROUND_NOTICE, file=sys.stderr, flush=True)
    return True


def _spawn(argv):
    """Start ``argv`` in its own session, output discarded; a daemon thread reaps it.

    Not a ``subprocess.Popen``: one still running when this process ends would be
    reported as a ResourceWarning, which the command line prints.
    """
    devnull = os.devnull
    pid = os.posix_spawn(argv[0], argv, dict(os.environ), setsid=True, file_actions=[
        (os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0)])
    threading.Thread(target=os.waitpid, args=(pid, 0), daemon=True).start()


def _lock_path() -> str:
    import numba

    from . import __version__

    name = f"gaussmix-{__version__}-numba-{numba.__version__}-{os.getuid()}.compiling"
    return os.path.join(tempfile.gettempdir(), name)


def _claim(path) -> bool:
    """Create the lock file; False if a live compiling process holds it."""
    try:
        if time.time() - os.path.getmtime(path) > _STALE_SECONDS:
            os.unlink(path)
    except OSError:
        pass
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return True
    except FileExistsError:
        return False
