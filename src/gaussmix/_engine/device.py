"""The device producer: the E-step written once against the array API.

Rows that live on an array-API device (a PyTorch or CuPy GPU, array-api-strict's
virtual devices, PyTorch on the CPU) are fitted where they are. :class:`DeviceSource`
is a Source like any other, so every face and every initialisation reads it; it also
brings its own producer (``thread_pass`` hands a source that has one to it):

* the pass ``Params -> SuffStats``: per chunk of rows on the device, the residuals
  ``z = x - mu_k`` of every component (K, m, D), the log-densities through the precision
  factors, log-sum-exp across components, and the responsibility-weighted moments of
  ``z`` about each component's current mean (no cancellation: the new means lie near
  the old ones). The kernels run in the data's dtype (float32 halves the traffic); the
  moments are accumulated across chunks in float64 on the device, and one (K, D, D)
  transfer per pass brings them to the host, where the M-step runs (K D^2 numbers).
* the starting pass of given labels (:meth:`DeviceSource.label_stats`: k-means'
  assignment, k-means++ and random_from_data's picked rows): the labels are settled
  on the host, their moments taken on the device;
* per-row results (responsibilities, log-densities, labels) computed on the device
  and returned there.

Rows that exceed device memory stay on the host (a NumPy array or any host Source) and
are streamed: each chunk is copied to the device on a background thread while the
kernel works on the one before.

Nothing here imports an array library: the namespace comes from the data (through
array-api-compat, see :mod:`.namespaces`).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .namespaces import is_device_array, namespace_of, to_namespace, to_numpy
from .params import LOG_2PI, Params
from .sources import Sample, Source, default_chunk_rows, draw_rows
from .stats import FAR_TOLERANCE, SuffStats, empty_stats


# Numbers per chunk in the kernel's largest temporaries (see device_chunk_rows): on a
# GPU 2^27 (the residual form's (K, m, D) arrays then hold 2^26 numbers, 256 MiB in
# float32: big enough that a pass is a few hundred kernel launches at most); the CPU
# namespaces get a sixteenth, for the caches.
GPU_CHUNK_ELEMENTS = 1 << 27
CPU_CHUNK_ELEMENTS = 1 << 23


def _is_cpu(device) -> bool:
    name = str(device).lower()
    return "cuda" not in name and "gpu" not in name and "xpu" not in name


def device_chunk_rows(row_elements, device) -> int:
    """Rows per device chunk when the kernel's largest temporary holds
    ``row_elements`` numbers per row (K D in the residual form, 2 D + 1 + K in the
    expanded one)."""
    budget = CPU_CHUNK_ELEMENTS if _is_cpu(device) else GPU_CHUNK_ELEMENTS
    return int(max(256, budget // max(1, row_elements)))


class DeviceSource:
    """Rows on an array-API device, or host rows streamed to one, as a Source.

    Parameters
    ----------
    X : array of shape (n, D)
        Either an array of an array-API library (PyTorch, CuPy, array-api-strict, ...),
        fitted on its own device, or a NumPy array / a host :class:`Source`, whose
        chunks are copied to ``device`` of ``namespace`` one by one (data larger than
        device memory), the next copy overlapping the current kernel.
    sample_weight : array of shape (n,), optional
        Non-negative row weights (any namespace; for a host Source, its chunks carry
        them). As in ``GaussianMixture.fit`` only their ratios matter: they are scaled
        by a power of two so that the largest lies in [1, 2).
    chunk_rows : int, optional
        Rows per chunk on the device; the kernel holds a few (K, chunk_rows, D) arrays.
        Default: from K, D and the kernel's form (see :func:`device_chunk_rows`).
    namespace : array-API namespace or str, optional
        For host rows: the library to stream to, e.g. ``"torch"`` or ``"cupy"``.
    device : optional
        For host rows: the device, e.g. ``"cuda"``.

    Notes
    -----
    ``chunks()`` and ``sample()`` return host (NumPy) rows, so the initialisations
    (k-means on a sample included) run as on any Source; the E-step passes run on the
    device through :meth:`producer`.
    """

    def __init__(self, X, sample_weight=None, *, chunk_rows=None, namespace=None,
                 device=None):
        self.chunk_rows = None if chunk_rows is None else int(chunk_rows)
        self._w = None
        if is_device_array(X):
            self.xp, self.device = namespace_of(X)
            self.data, self._host = _as_float_rows(X, self.xp), None
            self.n_rows, self.n_features = (int(n) for n in self.data.shape)
            self._dtype = np.dtype(_dtype_name(self.data.dtype))
            # on the host too: the counts, and the weights of a sample
            self.sample_weight = _checked_weights(sample_weight, self.n_rows, self._dtype)
            if self.sample_weight is not None:
                self._w = to_namespace(self.sample_weight, self.xp, self.device)
            return
        if namespace is None:
            raise ValueError(
                "DeviceSource of host rows needs the namespace to stream them to: "
                "pass namespace='torch' (or 'cupy', ...) and device='cuda'."
            )
        self.xp, self.device, self.data = _load_namespace(namespace), device, None
        if isinstance(X, Source):
            if sample_weight is not None:
                raise ValueError("sample_weight cannot be given with a Source: its "
                                 "chunks carry the row weights.")
            self._host = X
        else:
            self._host = _host_array_source(X, sample_weight)
        self.n_rows, self.n_features = self._host.n_rows, self._host.n_features
        self._dtype = np.dtype(self._host.dtype)
        self.sample_weight = getattr(self._host, "sample_weight", None)

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def resident(self) -> bool:
        """Whether the rows live on the device (else they are streamed from the host)."""
        return self._host is None

    # ---------------------------------------------------------------- host side
    def chunks(self):
        """``(X_chunk, weight_chunk_or_None)`` as NumPy arrays, in row order."""
        if self._host is not None:
            yield from self._host.chunks()
            return
        w = self.sample_weight
        # host-sized chunks: the initialisation's (m, K) responsibilities live there
        step = self.chunk_rows or default_chunk_rows(self.n_features, self.n_features)
        for start in range(0, self.n_rows, step):
            stop = min(start + step, self.n_rows)
            yield to_numpy(self.data[start:stop, :]), (None if w is None else w[start:stop])

    def sample(self, n: int, random_state) -> Sample:
        """As :meth:`ArraySource.sample` (the same draws), gathered on the device."""
        if self._host is not None:
            return self._host.sample(n, random_state)
        w = self.sample_weight
        rows = draw_rows(self.n_rows, n, random_state, w)
        if rows is None:
            return Sample(to_numpy(self.data), w, np.arange(self.n_rows), True)
        picked = self.xp.asarray(rows, device=self.device)
        X = to_numpy(self.xp.take(self.data, picked, axis=0))
        return Sample(X, None if w is None else w[rows], rows, False)

    # -------------------------------------------------------------- device side
    def _rows_per_chunk(self, row_elements):
        return self.chunk_rows or device_chunk_rows(row_elements, self.device)

    def device_chunks(self, row_elements):
        """``(start, X_chunk, weight_chunk_or_None)`` on the device, in row order, in
        chunks sized for a kernel of ``row_elements`` numbers per row."""
        step = self._rows_per_chunk(row_elements)
        if self._host is None:
            for start in range(0, self.n_rows, step):
                stop = min(start + step, self.n_rows)
                w = None if self._w is None else self._w[start:stop]
                yield start, self.data[start:stop, :], w
            return
        yield from _streamed(self._host, step, self.xp, self.device)

    def producer(self, kind: str, labels=None):
        """The E-step pass ``Params -> SuffStats`` on the device (see the module)."""
        fixed = None
        if labels is not None:
            fixed = to_namespace(np.asarray(labels, dtype=np.int64), self.xp, self.device)

        def run(params: Params) -> SuffStats:
            return device_stats(self, params, kind, fixed)

        return run

    def label_stats(self, n_components: int, kind: str, labels_of, fill=None):
        """Statistics of one-hot starting labels ``labels_of(start, chunk)`` (see
        ``init.initial_stats``): each chunk's labels are settled on the host (k-means'
        assignment reads the chunk there), its moments on the device. ``fill`` (for
        missing values) is unused: device rows are refused with NaN."""
        return device_label_stats(self, n_components, kind, labels_of)

    def per_row(self, params: Params, what: str):
        """Per-row results on the device: ``"score"`` (log-densities of the mixture),
        ``"labels"`` (most probable component), ``"proba"`` (responsibilities)."""
        return device_rows(self, params, what)


# ------------------------------------------------------------------- the kernel
class _DeviceParams:
    """What the kernel needs from ``params``, on the device in the chunk's dtype.

    Diagonal and spherical covariances with diagonal statistics take the expanded
    form (``expanded``): one product ``B @ [(x - s)**2, x - s, 1]`` gives every
    log-density, one ``R @ [...]`` every moment, about one shift ``s`` (the mixture's
    mean), as the NumPy kernel does: matrix products instead of (K, m, D) residuals.
    A component so far from ``s`` that the expansion would lose digits (FAR_TOLERANCE)
    sends the pass to the residual form.
    """

    def __init__(self, params: Params, xp, device, dtype, kind="diag"):
        k, d = params.means.shape
        # mclust's uniform noise component: its weighted log-density, a row after the
        # K Gaussian ones (-inf while its proportion is 0); None: no noise.
        self.noise = None
        if params.noise_log_density is not None:
            pro = params.noise_proportion
            self.noise = (math.log(pro) + params.noise_log_density if pro > 0
                          else -math.inf)
        self.family = family = params.family
        put = lambda a: to_namespace(np.asarray(a, dtype=dtype), xp, device)  # noqa: E731
        pc = params.precisions_cholesky
        if family == "full":
            self.factors = put(pc)
        elif family == "tied":
            self.factors = put(np.asarray(pc)[None])
        else:
            self.precisions = put(np.asarray(pc) ** 2)
        log_weights = params.log_weights
        if log_weights is None:
            with np.errstate(divide="ignore"):
                log_weights = np.log(params.weights)
        const = log_weights + params.log_det_cholesky - 0.5 * d * LOG_2PI
        self.means = put(params.means)
        self.const = put(np.asarray(const)[:, None])
        # the points the moments are taken about: each component's mean, or the shift
        self.centres64 = np.asarray(params.means, dtype=np.float64)
        self.device = device
        self.expanded = False
        if family in ("diag", "spherical") and kind == "diag":
            self._expand(params, const, put, dtype)
        # numbers per row in the kernel's largest temporaries: sets the chunk size
        self.row_elements = (2 * d + 1 + 2 * k) if self.expanded else 2 * k * d

    def _expand(self, params, const, put, dtype):
        weights, means = params.weights, np.asarray(params.means, dtype=np.float64)
        shift = weights @ means / weights.sum()
        centred = means - shift
        prec = np.asarray(params.precisions_cholesky, dtype=np.float64) ** 2
        if self.family == "spherical":
            prec = np.repeat(prec[:, None], means.shape[1], axis=1)
        distance = np.einsum("kd,kd->k", centred * centred, prec)
        if np.any(np.finfo(dtype).eps * distance > FAR_TOLERANCE.get(np.dtype(dtype),
                                                                       1e-3)):
            return  # a far component: the residual form keeps every digit
        basis = np.concatenate([-0.5 * prec, centred * prec,
                                (const - 0.5 * distance)[:, None]], axis=1)
        self.expanded = True
        self.basis = put(basis)
        self.shift = put(shift[None, :])
        self.centres64 = np.broadcast_to(shift, means.shape)


def _weighted_log_prob(xp, X, dp):
    """Residuals ``z`` (K, m, D) of the rows ``X`` (m, D) about each mean, and the
    weighted log-densities (K, m), or (K + 1, m) with the noise row last."""
    z = X[None, :, :] - dp.means[:, None, :]
    if dp.family in ("full", "tied"):
        y = xp.matmul(z, dp.factors)
        maha = xp.sum(y * y, axis=2)
    elif dp.family == "diag":
        maha = xp.sum(z * z * dp.precisions[:, None, :], axis=2)
    else:
        maha = xp.sum(z * z, axis=2) * dp.precisions[:, None]
    wlp = dp.const - 0.5 * maha
    if dp.noise is not None:
        noise = xp.full((1, X.shape[0]), dp.noise, dtype=X.dtype, device=dp.device)
        wlp = xp.concat([wlp, noise], axis=0)
    return z, wlp


def _expanded_log_prob(xp, X, dp):
    """Features ``[(x - s)**2, x - s, 1]`` (m, 2 D + 1) of the rows and the weighted
    log-densities (K [+ 1], m) in the expanded form (see _DeviceParams)."""
    xc = X - dp.shift
    ones = xp.ones((X.shape[0], 1), dtype=X.dtype, device=dp.device)
    features = xp.concat([xc * xc, xc, ones], axis=1)
    # wlp <= const  <=>  maha >= 0 (expanded squares may round below zero)
    wlp = xp.minimum(xp.matmul(dp.basis, xp.permute_dims(features, (1, 0))), dp.const)
    if dp.noise is not None:
        noise = xp.full((1, X.shape[0]), dp.noise, dtype=X.dtype, device=dp.device)
        wlp = xp.concat([wlp, noise], axis=0)
    return features, wlp


def _log_prob(xp, X, dp):
    """(basis of the moments, weighted log-densities (K [+ 1], m)) of the rows X."""
    return (_expanded_log_prob if dp.expanded else _weighted_log_prob)(xp, X, dp)


def _normalise(xp, wlp):
    """Log-sum-exp over the components of ``wlp`` (K, m): (log-likelihoods (m,), the
    largest log-density of each row (m,))."""
    top = xp.max(wlp, axis=0)
    # A row whose every log-density is -inf: keep the arithmetic finite (its
    # log-likelihood comes out -inf).
    top = xp.where(xp.isfinite(top), top, xp.zeros_like(top))
    return xp.log(xp.sum(xp.exp(wlp - top), axis=0)) + top, top


def device_stats(source: DeviceSource, params: Params, kind: str, labels=None) -> SuffStats:
    """One E-step pass over ``source`` on its device: the summed statistics."""
    xp, device = source.xp, source.device
    k, d = params.means.shape
    dtype = source.dtype
    dp = _DeviceParams(params, xp, device, dtype, kind)
    f64 = xp.float64
    acc_nk = xp.zeros((k,), dtype=f64, device=device)
    acc_s1 = xp.zeros((k, d), dtype=f64, device=device)
    acc_s2 = xp.zeros((k, d, d) if kind != "diag" else (k, d), dtype=f64, device=device)
    acc_ll = xp.zeros((), dtype=f64, device=device)
    acc_map = xp.zeros((), dtype=f64, device=device)
    acc_noise = xp.zeros((), dtype=f64, device=device)
    acc_w = xp.zeros((), dtype=f64, device=device)
    n_rows = xp.zeros((), dtype=xp.int64, device=device)
    worst_values, worst_rows = [], []
    width = k + (dp.noise is not None)  # the noise column last
    components = xp.reshape(xp.arange(width, device=device), (width, 1))
    for start, X, w in source.device_chunks(dp.row_elements):
        z, wlp = _log_prob(xp, X, dp)
        norm, top = _normalise(xp, wlp)
        resp = xp.exp(wlp - norm)
        free_map = top - norm  # log of each row's largest responsibility
        if labels is not None:
            lab = labels[start : start + X.shape[0]]
            given = lab >= 0
            hot = components == lab[None, :]
            resp = xp.where(given[None, :], xp.astype(hot, X.dtype), resp)
            own = xp.sum(xp.where(hot, wlp, xp.zeros_like(wlp)), axis=0)
            norm = xp.where(given, own, norm)
            free_map = xp.where(given, xp.zeros_like(free_map), free_map)
        if w is not None:
            resp = resp * w[None, :]
            norm64 = xp.astype(norm, f64)
            w64 = xp.astype(w, f64)
            acc_w = acc_w + xp.sum(w64)
            n_rows = n_rows + xp.sum(xp.astype(w > 0, xp.int64))
            acc_ll = acc_ll + xp.sum(norm64 * w64)
            acc_map = acc_map + xp.sum(xp.astype(free_map, f64) * w64)
            ranked = xp.where(w > 0, norm, xp.full_like(norm, math.inf))
        else:
            acc_w, n_rows = acc_w + X.shape[0], n_rows + X.shape[0]
            acc_ll = acc_ll + xp.sum(xp.astype(norm, f64))
            acc_map = acc_map + xp.sum(xp.astype(free_map, f64))
            ranked = norm
        i = xp.reshape(xp.argmin(ranked), (1,))  # kept on the device: no sync per chunk
        worst_values.append(xp.astype(xp.take(ranked, i), f64))
        worst_rows.append(xp.take(X, i, axis=0))
        if dp.noise is not None:
            acc_noise = acc_noise + xp.sum(xp.astype(resp[k, :], f64))
            resp = resp[:k, :]
        acc_nk = acc_nk + xp.sum(xp.astype(resp, f64), axis=1)
        if dp.expanded:  # z: the features [(x - s)**2, x - s, 1]
            moments = xp.astype(xp.matmul(resp, z), f64)
            acc_s1 = acc_s1 + moments[:, d : 2 * d]
            acc_s2 = acc_s2 + moments[:, :d]
            continue
        acc_s1 = acc_s1 + xp.astype(xp.matmul(resp[:, None, :], z)[:, 0, :], f64)
        if kind == "diag":
            s2 = xp.matmul(resp[:, None, :], z * z)[:, 0, :]
        else:
            s2 = xp.matmul(xp.permute_dims(z * resp[:, :, None], (0, 2, 1)), z)
        acc_s2 = acc_s2 + xp.astype(s2, f64)
    nk, s1, s2 = to_numpy(acc_nk), to_numpy(acc_s1), to_numpy(acc_s2)
    totals = to_numpy(xp.stack([acc_ll, acc_map, acc_noise, acc_w]))  # one transfer
    return _finish(dp, kind, nk, s1, s2, *(float(t) for t in totals),
                   int(to_numpy(n_rows)), xp, worst_values, worst_rows)


def _finish(dp, kind, nk, s1, s2, loglik, map_loglik, noise_nk, weight, n_rows, xp,
            worst_values, worst_rows) -> SuffStats:
    """Moments about the centres (the current means, or the expanded form's shift)
    -> weighted means and scatters about them."""
    safe = np.where(nk > 0, nk, 1.0)
    shift = np.where(nk[:, None] > 0, s1 / safe[:, None], 0.0)  # new mean - old mean
    means = dp.centres64 + shift
    if kind == "diag":
        scatter = s2 - nk[:, None] * shift**2
    else:
        scatter = s2 - nk[:, None, None] * shift[:, :, None] * shift[:, None, :]
        scatter = 0.5 * (scatter + np.swapaxes(scatter, 1, 2))
        if kind == "tied":
            scatter = scatter.sum(axis=0)
    worst_loglik, worst_row = np.inf, None
    if worst_values:
        values = to_numpy(xp.concat(worst_values))
        j = int(np.argmin(values))
        if values[j] < np.inf:  # a row of positive weight
            worst_loglik = float(values[j])
            worst_row = to_numpy(worst_rows[j])[0].astype(np.float64)
    return SuffStats(
        nk=nk, means=means, scatter=scatter, kind=kind, loglik=loglik,
        weight=weight, n_rows=n_rows,
        worst_loglik=worst_loglik, worst_row=worst_row, map_loglik=map_loglik,
        noise_nk=noise_nk,
    )


def device_label_stats(source: DeviceSource, n_components: int, kind: str,
                       labels_of) -> SuffStats:
    """Statistics of given labels (-1: none), chunk by chunk on the device, each
    chunk's moments about its own component means, the chunks merged on the host."""
    xp, device, k = source.xp, source.device, n_components
    f64 = xp.float64
    components = xp.reshape(xp.arange(k, device=device), (k, 1))
    total = empty_stats(k, source.n_features, kind)
    for start, X, w in source.device_chunks(2 * k * source.n_features):
        labels = np.asarray(labels_of(start, to_numpy(X)), dtype=np.int64)
        hot = components == to_namespace(labels, xp, device)[None, :]
        resp = xp.astype(hot, X.dtype)
        if w is not None:
            resp = resp * w[None, :]
        nk = to_numpy(xp.sum(xp.astype(resp, f64), axis=1))
        sums = to_numpy(xp.astype(xp.matmul(resp, X), f64))
        centres = sums / np.where(nk > 0, nk, 1.0)[:, None]
        z = X[None, :, :] - to_namespace(centres.astype(source.dtype), xp, device)[:, None, :]
        s1 = xp.matmul(resp[:, None, :], z)[:, 0, :]
        if kind == "diag":
            s2 = xp.matmul(resp[:, None, :], z * z)[:, 0, :]
        else:
            s2 = xp.matmul(xp.permute_dims(z * resp[:, :, None], (0, 2, 1)), z)
        if w is None:
            weight, n_rows = float(X.shape[0]), X.shape[0]
        else:
            weight = float(to_numpy(xp.sum(xp.astype(w, f64))))
            n_rows = int(to_numpy(xp.sum(xp.astype(w > 0, xp.int64))))
        # about the centres as the kernel saw them (in the chunk's dtype)
        about = _Centres(centres.astype(source.dtype).astype(np.float64))
        total = total + _finish(about, kind, nk, to_numpy(xp.astype(s1, f64)),
                                to_numpy(xp.astype(s2, f64)), 0.0, 0.0, 0.0, weight,
                                n_rows, xp, [], [])
    return total


class _Centres:
    """The points a chunk's moments were taken about (what _finish reads)."""

    def __init__(self, centres64):
        self.centres64 = centres64


def device_rows(source: DeviceSource, params: Params, what: str):
    """Per-row results over ``source``, on its device (see DeviceSource.per_row)."""
    xp, device = source.xp, source.device
    dp = _DeviceParams(params, xp, device, source.dtype)
    parts = []
    for _, X, _ in source.device_chunks(dp.row_elements):
        wlp = _log_prob(xp, X, dp)[1]
        if what == "labels":
            parts.append(xp.argmax(wlp[: params.n_components, :], axis=0))
            continue
        norm = _normalise(xp, wlp)[0]
        if what == "score":
            parts.append(norm)
        elif what == "proba":
            parts.append(xp.permute_dims(xp.exp(wlp - norm), (1, 0)))
        else:
            raise ValueError(f"unknown per-row result {what!r}")
    return xp.concat(parts, axis=0)


# ------------------------------------------------------------------- the rows
def _dtype_name(dtype) -> str:
    for name in ("float32", "float64"):
        if str(dtype).endswith(name):
            return name
    raise TypeError(f"not a float dtype: {dtype}")


def _as_float_rows(X, xp):
    """X as 2-D float32 or float64 (other dtypes become float64), checked finite."""
    if X.ndim != 2:
        raise ValueError(
            f"Expected 2D array, got {X.ndim}D array instead. Pass a 2-D array of shape "
            "(n_samples, n_features); reshape or flatten extra dimensions first."
        )
    if not (xp.isdtype(X.dtype, "real floating") and str(X.dtype)[-7:] in ("float32",
                                                                            "float64")):
        X = xp.astype(X, xp.float64)
    if not bool(xp.all(xp.isfinite(X))):
        raise ValueError(
            "Input X contains NaN or infinity. Drop or impute those rows first "
            "(e.g. sklearn.impute.SimpleImputer)."
        )
    return X


def _load_namespace(namespace):
    """The array-API namespace of a library given by name or module (PyTorch's is
    array-api-compat's wrapper)."""
    import importlib

    from .namespaces import _compat

    module = importlib.import_module(namespace) if isinstance(namespace, str) else namespace
    return _compat().array_namespace(module.asarray([0.0]))


def _checked_weights(sample_weight, n_rows, dtype):
    """Validated weights on the host, scaled as GaussianMixture.fit scales them."""
    if sample_weight is None:
        return None
    from .._validation import check_sample_weight

    return check_sample_weight(to_numpy(sample_weight), n_rows, dtype)


def _host_array_source(X, sample_weight):
    from .sources import ArraySource

    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"Expected 2D array, got {X.ndim}D array instead. Pass a 2-D "
                         "array of shape (n_samples, n_features).")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if not np.isfinite(X).all():  # as for rows on the device (_as_float_rows)
        raise ValueError("Input X contains NaN or infinity. Drop or impute those rows "
                         "first (e.g. sklearn.impute.SimpleImputer).")
    w = _checked_weights(sample_weight, X.shape[0], X.dtype)
    return ArraySource(X, w, chunk_rows=max(1, X.shape[0]))


def _streamed(host, step, xp, device):
    """The host source's rows in chunks of ``step`` on the device; each copy runs on a
    background thread while the caller's kernel works on the chunk before."""

    def pieces():
        start = 0
        for X, w in host.chunks():
            for a in range(0, X.shape[0], step):
                yield start + a, X[a : a + step], None if w is None else w[a : a + step]
            start += X.shape[0]

    def upload(piece):
        start, X, w = piece
        X_dev = to_namespace(X, xp, device)
        return start, X_dev, None if w is None else to_namespace(w.astype(X.dtype), xp,
                                                                   device)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for piece in pieces():
            following = pool.submit(upload, piece)
            if pending is not None:
                yield pending.result()
            pending = following
        if pending is not None:
            yield pending.result()
