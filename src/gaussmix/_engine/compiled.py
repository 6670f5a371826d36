"""The compiled E-step: the NumPy kernel's contract in one fused pass per row block.

The NumPy kernel (:mod:`.estep`) spends its time where K and D are small in the
element-wise passes over (K, rows) arrays: max, subtract, exp, sum, log, divide, each
a trip through memory. The compiled kernel (Numba, the ``fast`` extra; bodies in
:mod:`._compiled_kernels`) does the log-densities, the log-sum-exp, the
responsibilities and the statistics of a sub-block of rows while it sits in cache,
on the same threads and blocks (:func:`.parallel.run_blocks`). It returns the same
:class:`SuffStats`, to rounding.

It serves the common case and hands the rest back to the NumPy kernel (``estep``
returns None): a noise component, far components (see ``stats.FAR_TOLERANCE``), a
scatter layout other than the family's own, wide rows (BLAS is faster there; see
``MAX_FEATURES``, ``MAX_WORK``), and a chunk with a row whose every log-density
overflowed.

Numba compiles the kernels once per install into its on-disk cache. A process that
finds the cache cold uses the NumPy kernel and starts the background compilation
(:mod:`.._first_run`), unless the chunk is large enough for compiling in the
call to pay (``COMPILE_IN_CALL_WORK``). Small chunks keep the NumPy kernel
(``MIN_WORK``). ``GAUSSMIX_KERNEL=numpy`` turns the compiled kernel off, ``=numba``
forces it.
"""

from __future__ import annotations

import math
import os

import numpy as np

from .params import LOG_2PI, Params, inverse_factors
from .parallel import run_blocks
from .stats import (CERTIFIED_RATIO, SPARSE_TAU, Moments, far_components,
                    with_chunk_totals)

# Where the compiled kernel beats the NumPy one (BLAS's products take over as K and D
# grow), measured per E-step on 2 threads, NumPy's time / compiled: full K x D = 6
# (W1) 2.0-2.4x, 256 (W2) 1.2-2.4x, 384 (D = 24) 1.8x, 512 (D = 32) 0.5-1.4x, 1024
# 0.6x; tied D = 16 3.0x, 64 1.1x (K = 16); diagonal K x D = 64 2.1-2.7x, 256-1024
# 1.1-2.0x, 2048 0.7-0.8x.
MAX_FEATURES = {"full": 24, "tied": 64}
MAX_WORK = {"full": 384, "tied": 1024, "diag": 1024}  # K x D
# Rows per run_blocks block; the kernel takes them in sub-blocks whose work arrays
# fill about SUB_BYTES, of 16 to 256 rows (measured: the full kernel's W2 runs best
# at 256, though its work arrays then overflow L2).
BLOCK_ROWS = 8192
SUB_BYTES = 1 << 20
# n * K * D of a chunk below which the NumPy kernel is kept: loading Numba and the
# compiled code (about 0.35 s once per process) pays only over enough work.
MIN_WORK = 1e6
# ... and above which compiling in the call (seconds, once per install) pays.
COMPILE_IN_CALL_WORK = 2e8

_kernels = None


def _load_kernels():
    """The Numba module, or None without Numba."""
    global _kernels
    if _kernels is None:
        try:
            from . import _compiled_kernels
        except ImportError:
            _kernels = False
        else:
            _kernels = _compiled_kernels
    return _kernels or None


def applies(params: Params, kind: str, n_features: int, noise, far) -> bool:
    """Whether the compiled kernel covers this E-step (see the module's docstring)."""
    family = params.family
    layout = {"spherical": "diag"}.get(family, family)
    if noise is not None or far.size or layout != kind:
        return False
    work = params.n_components * n_features
    return (work <= MAX_WORK.get(layout, work)
            and n_features <= MAX_FEATURES.get(family, n_features))


def _ready(work, name):
    """The compiled function ``name`` of the kernels' module to run now, or None: use
    NumPy (off, too little work, no Numba, or a cold cache being filled in the
    background)."""
    mode = os.environ.get("GAUSSMIX_KERNEL", "auto").lower()
    if mode not in ("auto", "numba", "numpy"):
        raise ValueError(f"GAUSSMIX_KERNEL={mode!r}: use 'auto', 'numba' or 'numpy'.")
    if mode == "numpy" or (mode == "auto" and work < MIN_WORK):
        return None
    kernels = _load_kernels()
    if kernels is None:
        if mode == "numba":
            raise ValueError("GAUSSMIX_KERNEL=numba needs Numba: "
                             "pip install 'gaussmix[fast]'.")
        return None
    function = getattr(kernels, name)
    if mode == "auto":
        from .. import _first_run as first_run

        if work >= COMPILE_IN_CALL_WORK:
            first_run.announce(function)  # a cold cache is compiled in the call: say so
        elif first_run.will_compile(function) and first_run.compile_in_background():
            return None
    return function


def _block_rows(X):
    """``rows(a, b)``: X[a:b] as the kernels take it, C-contiguous and writable (a
    copy only where X is not: Fortran order, strided or read-only)."""
    if X.flags.c_contiguous and X.flags.writeable:
        return lambda a, b: X[a:b]
    return lambda a, b: np.array(X[a:b], order="C")


def _labels(labels, n, k):
    """Labels as the kernels read them (int64; empty for none), or None when one is
    out of range (the kernels do not check: the NumPy path raises)."""
    if labels is None:
        return np.empty(0, dtype=np.int64)
    lab = np.ascontiguousarray(labels, dtype=np.int64)
    if lab.shape != (n,) or (n and (lab.max() >= k or lab.min() < -1)):
        return None
    return lab


def _model(params: Params, shift):
    """The kernels' arrays for ``params`` about ``shift``: (model arrays, const, mc)."""
    d = params.means.shape[1]
    family = params.family
    mc = params.means - shift
    const = params.log_det_cholesky - 0.5 * d * LOG_2PI
    const = const + (np.log(params.weights) if params.log_weights is None
                     else params.log_weights)
    pc = np.ascontiguousarray(params.precisions_cholesky)
    if family == "full":  # y_k = U_k^T (x - s) - U_k^T (mu_k - s)
        model = (np.ascontiguousarray(pc.transpose(0, 2, 1)),
                 -np.einsum("ki,kij->kj", mc, pc))
    elif family == "tied":  # y = U^T (x - s), against U^T (mu_k - s)
        model = (np.ascontiguousarray(pc.T), mc @ pc)
    else:
        prec = pc**2 if family == "diag" else np.outer(pc**2, np.ones(d))
        model = (np.ascontiguousarray(mc), np.ascontiguousarray(prec))
    return model, const, mc


def _state_maker(kernels, family, kind, k, d):
    """``make_state()`` of a family kernel's thread: its accumulators (nk, sums,
    second, trace, acc), then work arrays made once, for sub-blocks of 16 to 256 rows
    whose work arrays fill about SUB_BYTES."""
    per_row = 8 * kernels.work_size(family, k, d, 1)
    sub = int(min(256, max(16, SUB_BYTES // per_row // 16 * 16)))
    second_shape = {"full": (k, d, d), "diag": (k, d), "tied": (d, d)}[kind]

    def make_state():
        return (np.zeros(k), np.zeros((k, d)), np.zeros(second_shape),
                np.zeros((2, k)), np.array([0.0, 0.0, np.inf, -1.0, 0.0]),
                np.empty(kernels.work_size(family, k, d, sub)),
                np.empty(sub, dtype=np.int64), sub)

    return make_state


def _family_kernel(family, work):
    """The compiled kernel of ``family`` for a chunk of ``work`` = n K D, or None."""
    return _ready(work, {"full": "full_block", "tied": "tied_block"}.get(family,
                                                                         "diag_block"))


def estep(X, sample_weight, params: Params, shift, kind, labels, n_threads):
    """The chunk's statistics by the compiled kernel; None: use the NumPy kernel."""
    family = params.family
    n, d = X.shape
    k = params.n_components
    kernel = _family_kernel(family, n * k * d)
    if kernel is None:
        return None
    kernels = _load_kernels()
    model, const, mc = _model(params, shift)
    pc = params.precisions_cholesky
    w = (np.empty(0) if sample_weight is None
         else np.ascontiguousarray(sample_weight, dtype=np.float64))
    lab = _labels(labels, n, k)
    if lab is None:
        return None
    rows = _block_rows(X)
    make_state = _state_maker(kernels, family, kind, k, d)
    shift = np.ascontiguousarray(shift, dtype=np.float64)
    no_out = np.empty((0, 1))

    def run(tau):
        def block(st, a, b):
            kernel(rows(a, b), a, w, lab, shift, *model, const, tau, *st, -1, no_out)

        states = run_blocks(n, BLOCK_ROWS, make_state, block, n_threads)
        total = [sum(st[i] for st in states) for i in range(4)]
        accs = [st[4] for st in states]
        return total, accs

    (nk, sums, second, trace), accs = run(SPARSE_TAU)
    if any(acc[4] for acc in accs):
        return None  # a row beyond the model's range: the NumPy kernel settles it
    if family == "full" and np.any(trace[1] > CERTIFIED_RATIO * trace[0]):
        (nk, sums, second, trace), accs = run(0.0)  # skipped pairs not negligible
    return _finish(X, sample_weight, kind, shift, mc, nk, sums, second, accs, pc)


def responsibilities_kernel(work):
    """The compiled column log-sum-exp for the NumPy kernel's blocks
    (``estep._logsumexp_cols``) for a chunk of ``work`` = n K D, or None."""
    return _ready(work, "responsibilities_cols")


def sparse_kernels(work):
    """The sparse whitened scatter's staging (``stats.Moments._add_sparse``) compiled,
    ``(sparse_count, sparse_gather)``, for a chunk of ``work`` = n K D, or None."""
    count, gather = _ready(work, "sparse_count"), _ready(work, "sparse_gather")
    return None if count is None or gather is None else (count, gather)


_WHAT = {"labels": 0, "score": 1, "proba": 2}


def per_row(X, params: Params, shift, what, n_threads=None):
    """Each row's most probable component (``what="labels"``, int64 (n,)),
    log-likelihood ("score", (n,)) or responsibilities ("proba", (n, K)) by the
    compiled kernel, in float64; None: use the NumPy kernel (no kernel, too little
    work, or a row whose every log-density is -inf: the NumPy kernel settles it).
    The caller checks that the kernel ``applies`` to ``params``."""
    family = params.family
    n, d = X.shape
    k = params.n_components
    kernel = _family_kernel(family, n * k * d)
    if kernel is None or n == 0:
        return None
    kernels = _load_kernels()
    shift = np.ascontiguousarray(shift, dtype=np.float64)
    model, const, _ = _model(params, shift)
    code = _WHAT[what]
    out = np.empty((n, k if code == 2 else 1))
    layout = {"spherical": "diag"}.get(family, family)
    make_state = _state_maker(kernels, family, layout, k, d)
    rows = _block_rows(X)
    none = np.empty(0), np.empty(0, dtype=np.int64)  # no weights, no labels

    def block(st, a, b):
        kernel(rows(a, b), a, *none, shift, *model, const, 0.0, *st, code, out)

    states = run_blocks(n, BLOCK_ROWS, make_state, block, n_threads)
    if any(st[4][4] for st in states):
        return None
    if code == 0:
        return out[:, 0].astype(np.int64)
    return out if code == 2 else out[:, 0]


def _symmetric(lower):
    """The symmetric matrices whose lower triangles the kernels filled (..., D, D)."""
    return np.tril(lower) + np.swapaxes(np.tril(lower, -1), -1, -2)


def _finish(X, sample_weight, kind, shift, mc, nk, sums, second, accs, pc):
    k, d = mc.shape
    if kind in ("full", "tied"):
        second = _symmetric(second)
    moments = Moments(k, d, kind, mc if kind == "full" else None)
    moments.nk = nk
    moments.sums = sums - nk[:, None] * mc if kind == "full" else sums
    moments.second = second
    if kind == "full":  # whitened: x - mu_k = U_k^{-T} y
        moments.set_whitening(inverse_factors(pc))
    return with_chunk_totals(
        moments.finish(shift), X, sample_weight,
        loglik=math.fsum(acc[0] for acc in accs),
        map_loglik=math.fsum(acc[1] for acc in accs),
        worst=min(((acc[2], int(acc[3])) for acc in accs), key=lambda t: t[0]))


def nearest_centre_terms(centres, about):
    """(towards (D, K), offsets (K,)) with |x - c_k|^2 / 2 = offsets[k] + x.towards[:, k]
    plus a term of x's own: towards = s - c_k, offsets = |c_k - s|^2 / 2 - s.(s - c_k)
    about a point s near the rows, so that far from the origin only x.(s - c_k) is
    large, and it is rounded in float64 (eps |s| / |x - s| of the differences)."""
    towards = np.ascontiguousarray((about - centres).T)
    return towards, 0.5 * np.einsum("dk,dk->k", towards, towards) - about @ towards


def label_stats(X, labels, sample_weight, kind, n_components, centres=None,
                n_threads=None):
    """Statistics of hard labels (``stats.stats_from_labels``) in one compiled pass
    about a point near the rows; None: use NumPy's (no compiled kernel, too little work, or
    a component so far from the mean that one pass would lose digits).

    With ``centres`` (K, D) instead of labels (None), each row's label is its nearest
    centre (k-means' start beyond its sample), settled in the same pass: the distances'
    cross terms by BLAS about the shift, so unlike ``KMeans.predict``'s
    |x|^2 - 2 x.c + |c|^2 no digits are lost far from the origin (float32 data at 1e4
    keeps none there). None also when a row has a NaN (the caller fills its gaps)."""
    n, d = X.shape
    k = n_components
    kernel = _ready(n * k * d, "label_block")
    if kernel is None or n == 0:
        return None
    kernels = _load_kernels()
    # A point near the data (far components are refused below): a strided subset's
    # mean, as the full mean costs a third of the pass.
    shift = X[:: max(1, n // 4096)].mean(axis=0, dtype=np.float64)
    w = (np.empty(0) if sample_weight is None
         else np.ascontiguousarray(sample_weight, dtype=np.float64))
    if centres is None:
        lab = _labels(labels, n, k)
        if lab is None or not lab.size:
            return None
        offsets = np.empty(0)
    else:  # the kernel writes each row's nearest centre
        lab = np.empty(n, dtype=np.int64)
        towards, offsets = nearest_centre_terms(centres, shift)
    no_scores = np.empty((0, k))
    second_shape = {"full": (k, d, d), "diag": (k, d), "tied": (1, d, d)}[kind]
    rows = _block_rows(X)
    sub = 256

    assign = centres is not None
    block_rows = min(n, BLOCK_ROWS)

    def make_state():  # accumulators, then work arrays made once
        return (np.zeros(k), np.zeros((k, d)), np.zeros(second_shape),
                np.empty(kernels.label_work_size(d, sub)), np.zeros(1),
                np.empty((block_rows, k) if assign else 0))

    def block(st, a, b):
        if st[4][0]:  # a NaN met: the caller redoes the chunk, spare the products
            return
        X_block = rows(a, b)
        scores = no_scores
        if assign:  # the distances' cross terms x.(s - c) by BLAS
            scores = np.matmul(X_block, towards, out=st[5][: b - a])
        kernel(X_block, a, w, lab, scores, offsets, shift, *st[:5])

    states = run_blocks(n, BLOCK_ROWS, make_state, block, n_threads)
    if any(st[4][0] for st in states):
        return None  # a row with a NaN: its gaps are filled first (the caller's path)
    nk, sums, second = (sum(st[i] for st in states) for i in range(3))
    if kind != "diag":
        second = _symmetric(second)
    moments = Moments(k, d, kind)
    moments.nk, moments.sums = nk, sums
    moments.second = second[0] if kind == "tied" else second
    stats = moments.finish(shift)
    if far_components(stats, shift, X.dtype).size:
        return None
    return stats
