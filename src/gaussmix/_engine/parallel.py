"""Both cores busy: run a kernel over consecutive row blocks on a few threads.

NumPy's element-wise loops and BLAS release the GIL, so plain threads scale on the
heavy parts of the E-step. Each thread keeps its own state (buffers, float64
accumulators) and takes a fixed, interleaved share of the blocks, so the same call
gives the same bits every time; the caller adds the states up in thread order.
While the threads run, BLAS is held to one thread each: OpenBLAS's own threading on
the small products of a block costs more than it gains, and two BLAS pools on two
cores would oversubscribe them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable, TypeVar

S = TypeVar("S")

_local = threading.local()
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_controller = None


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def get_num_threads() -> int:
    """Threads the kernels use by default: $GAUSSMIX_NUM_THREADS, else every core.

    Callers choose otherwise by argument (``n_threads`` of the producers and kernels).
    """
    env = os.environ.get("GAUSSMIX_NUM_THREADS")
    if env:
        return max(1, int(env))
    return _available_cores()


@contextlib.contextmanager
def single_threaded_blas():
    """A context that holds BLAS to one thread while it is open.

    For the kernels' small products, and for the M-step too: OpenBLAS's threads on a
    K x (D x D) Cholesky or triangular solve cost far more than the work (tens of
    milliseconds per call when the other core is busy). Uses threadpoolctl; the
    controller is built once, as building it is slow. Nested in the same thread it
    does nothing (the outer one holds the limit): setting a limit costs tens of
    microseconds, which mclust's small fits would pay several times per iteration.
    """
    global _controller
    if getattr(_local, "blas_limited", False):
        yield
        return
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    with _controller.limit(limits=1, user_api="blas"):
        _local.blas_limited = True
        try:
            yield
        finally:
            _local.blas_limited = False


def with_single_threaded_blas(func):
    """Decorator: run ``func`` under :func:`single_threaded_blas`."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with single_threaded_blas():
            return func(*args, **kwargs)

    return wrapper


def _get_pool(n: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < n:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="gaussmix")
            _pool_size = n
        return _pool


def _serial(n_rows, block_rows, make_state, work):
    state = make_state()
    for start in range(0, n_rows, block_rows):
        work(state, start, min(start + block_rows, n_rows))
    return state


def run_blocks(
    n_rows: int,
    block_rows: int,
    make_state: Callable[[], S],
    work: Callable[[S, int, int], None],
    n_threads: int | None = None,
) -> list[S]:
    """Call ``work(state, start, stop)`` for every block of rows, on up to n_threads.

    Parameters
    ----------
    n_rows : int
        Rows to cover, in blocks ``[start, stop)`` of ``block_rows`` rows (the last
        may be shorter).
    block_rows : int
    make_state : callable () -> state
        Called once per thread that runs; the thread's blocks all use its state.
    work : callable (state, start, stop) -> None
    n_threads : int, optional
        Default :func:`get_num_threads`. Calls from inside a worker run serially.

    Returns
    -------
    list
        The states of the threads that ran (at least one, even for no rows).
    """
    block_rows = max(1, int(block_rows))
    n_blocks = -(-n_rows // block_rows)
    n = get_num_threads() if n_threads is None else max(1, int(n_threads))
    n = min(n, n_blocks)
    if getattr(_local, "inside", False):
        return [_serial(n_rows, block_rows, make_state, work)]
    if n <= 1:
        with single_threaded_blas():
            return [_serial(n_rows, block_rows, make_state, work)]

    # Thread t takes blocks t, t + n, t + 2n, ...: a fixed assignment, so each state
    # sums the same rows in the same order on every run and results are reproducible
    # bit for bit (a shared work queue balances load better but varies the grouping).
    def worker(t):
        _local.inside = True
        try:
            state = make_state()
            for block in range(t, n_blocks, n):
                start = block * block_rows
                work(state, start, min(start + block_rows, n_rows))
            return state
        finally:
            _local.inside = False

    with single_threaded_blas():
        pool = _get_pool(n - 1)
        futures = [pool.submit(worker, t) for t in range(1, n)]
        try:
            mine = worker(0)  # the calling thread works too
        finally:
            wait(futures)  # never leave a worker running past the BLAS limit
        return [mine] + [f.result() for f in futures]
