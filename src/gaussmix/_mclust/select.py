"""Model selection by BIC and ICL over numbers of components and covariance models.

``select`` is mclust's ``Mclust`` / ``mclustBIC`` / ``mclustICL``: it fits every
(G, model) cell of a grid with mclust's conventions and reports the tables, the best
model, its classification and uncertainty, a summary and plots.

mclust's conventions, kept number for number:

* each fit with G >= 2 starts from the hierarchical partition of :mod:`gaussmix._mclust.hc`
  (VVV agglomeration on the scaled SVD transform; quantile classes for 1-D data) with
  an M-step, then alternates E- and M-steps until the relative change of the
  log-likelihood ``|l_t - l_{t-1}| / (1 + |l_t|)`` is at most ``tol`` (1e-5);
* with more than 2000 rows the partition is of a random subset of 2000 rows: an M-step
  on the subset, an E-step on all rows, then EM on all rows;
* G = 1 is fitted in closed form, once per class of models that coincide for one
  component (spherical, diagonal, ellipsoidal), so tied cells are tied exactly;
* ``BIC = 2 loglik - npar log(n)`` (larger is better), ``ICL = BIC + 2 sum_i log z_i,c_i``
  with ``c_i`` the most probable component of row ``i``;
* a fit that fails (a singular covariance, a vanishing component) is a NaN cell, not
  an error;
* the best cell is the largest BIC; ties go to the smaller G, then the model name
  (mclust's ``pickBIC``);
* an optional noise component, uniform over the data's hypervolume (mclust's
  ``initialization = list(noise = ...)`` and ``hypvol``), adds a G = 0 row and one
  column of responsibilities.
"""

from __future__ import annotations

import functools
import math
import sys
import time
import warnings
from dataclasses import replace
from functools import lru_cache

import numpy as np

from .._engine.init import given_stats, one_hot
from .._engine.mstep import MStep
from .._engine.dask_source import DaskSource, is_dask
from .._engine.missing import check_rows_observed, mean_filled, missing_rows
from .._engine.namespaces import is_device_array
from .._engine.parallel import single_threaded_blas
from .._engine.sources import ArraySource, Source, take_rows
from .._errors import FitError
from .._names import case_hint
from .._models import mclust as _fam
from .._models.mclust import MCLUST_MODELS, RTEPS as _RTEPS, UNIVARIATE_MODELS
from .._models.registry import get_model
from .em import fit_mclust, resolve_backend, responsibilities, single_stats
from .hc import HC_SUBSET, starting_partitions

__all__ = ["select", "SelectionResult", "hypervolume", "MCLUST_MODELS"]

# Each model's facts (its family, its class with one component, its summary wording,
# whether it has a prior) are in the registry: get_model(name).


def _subset_params(name, X, partition, g, prior, noise_log_density):
    """mclust's start on a subset: an M-step on its rows from their partition.

    The weights are ``n_k / m`` of the subset's m rows; a prior is resolved on the
    subset, as mclust's ``mstep`` resolves it on the data it is given.
    """
    source = ArraySource(X, None, X.shape[0])
    stats = given_stats(source, g, get_model(name).stats_kind,
                        lambda a, chunk: one_hot(partition, g))
    if prior is not None:
        from .._models.prior import resolve_prior

        prior = resolve_prior(prior, X, g, name)
    # With a noise component the parameters carry it (at proportion 0): the E-step on
    # all rows then keeps the noise rows fixed and spreads the others over the Gaussians.
    mstep = MStep(get_model(name), prior=prior, strict=True,
                  noise_log_density=noise_log_density)
    return mstep(stats)[0]


def hypervolume(X, reciprocal=False) -> float:
    """mclust's ``hypvol``: the volume of the data, for a uniform noise component.

    The smaller of the volume of the bounding box of the data and that of the bounding
    box of its principal components.

    Parameters
    ----------
    X : array-like of shape (n, d), or a Source (read in two passes)
    reciprocal : bool, default=False
        Return ``1 / volume`` (mclust's ``Vinv``).

    Returns
    -------
    float
    """
    if isinstance(X, Source):
        lo, hi, mean, cov = _extent_and_moments(X)
    else:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[:, None]
        lo, hi = X.min(axis=0), X.max(axis=0)
        mean = X.mean(axis=0)
        centred = X - mean
        cov = centred.T @ centred / X.shape[0]
    if lo.shape[0] == 1:
        span = float(hi[0] - lo[0])
        return 1.0 / span if reciprocal else span
    box = np.log(hi - lo).sum()
    _, vecs = np.linalg.eigh(cov)
    if isinstance(X, Source):
        proj_lo, proj_hi = _projected_extent(X, mean, vecs)
        pcs = np.log(proj_hi - proj_lo).sum()
    else:
        pcs = np.log(np.ptp(centred @ vecs, axis=0)).sum()
    log_volume = min(box, pcs)
    return float(np.exp(-log_volume if reciprocal else log_volume))


def _extent_and_moments(source):
    """Column minima, maxima, mean and covariance of a source, in one pass."""
    lo = np.full(source.n_features, np.inf)
    hi = np.full(source.n_features, -np.inf)

    def resp_of(start, chunk):
        np.fmin(lo, np.nanmin(chunk, axis=0), out=lo)  # NaN: a missing coordinate
        np.fmax(hi, np.nanmax(chunk, axis=0), out=hi)
        return np.ones((chunk.shape[0], 1))

    stats = given_stats(source, 1, "full", resp_of)
    return lo, hi, stats.means[0], stats.scatter[0] / stats.nk[0]


def _projected_extent(source, mean, vecs):
    """Minima and maxima of the rows' principal components."""
    lo = np.full(vecs.shape[1], np.inf)
    hi = np.full(vecs.shape[1], -np.inf)
    for chunk, _ in source.chunks():
        proj = (chunk - mean) @ vecs
        np.minimum(lo, proj.min(axis=0), out=lo)
        np.maximum(hi, proj.max(axis=0), out=hi)
    return lo, hi


def _map(z):
    """Most probable column of each row (the first one on ties, as mclust's ``map``)."""
    return np.argmax(z, axis=1)


# ------------------------------------------------------------------------- inputs
def _check_data(X, allow_missing=False):
    """The rows as a Source, the in-memory array if there is one, and column names."""
    if is_dask(X):  # every EM fit of the grid on the workers
        X = DaskSource(X, allow_missing=allow_missing)
    elif is_device_array(X):  # every EM fit of the grid on its device (PyTorch, CuPy)
        from .._engine.device import DeviceSource

        X = DeviceSource(X)
    if isinstance(X, Source):
        names = getattr(X, "feature_names", None)
        feature_names = None if names is None else np.asarray(names, dtype=object)
        return X, getattr(X, "X", None), names, feature_names
    names = None
    if hasattr(X, "columns") and hasattr(X, "to_numpy"):  # pandas DataFrame
        names = [str(c) for c in X.columns]
        if all(isinstance(c, str) for c in X.columns):
            feature_names = np.asarray(list(X.columns), dtype=object)
        else:
            feature_names = None
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        bad = [str(c) for c, t in X.dtypes.items()
               if not is_numeric_dtype(t) or is_bool_dtype(t)]
        if bad:
            raise ValueError(f"X has non-numeric column(s) {', '.join(bad)}; select the "
                             "numeric ones.")
        X = X.to_numpy(dtype=np.float64)
    else:
        feature_names = None
        X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"X must be a 1-D or 2-D array, got {X.ndim} dimensions.")
    if X.shape[0] < 2 or X.shape[1] < 1:
        raise ValueError(f"select needs at least 2 rows and 1 column, got {X.shape}.")
    if allow_missing:
        if np.isinf(X).any():
            raise ValueError("X contains infinite values; remove or replace them.")
        check_rows_observed(X, columns=True)
    elif not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values; remove or impute them, or "
                         "pass nan_policy='marginalize' to treat NaN as missing.")
    return ArraySource(X, None, max(X.shape[0], 1)), X, names, feature_names


def _resolve_models(models, n, d, prior):
    if models is None:
        if d == 1:
            chosen = list(UNIVARIATE_MODELS)
        else:
            chosen = list(MCLUST_MODELS)
            if n <= d:
                chosen = [m for m in chosen if get_model(m).is_diagonal]
    else:
        if isinstance(models, str):
            models = [models]
        try:
            models = list(models)
        except TypeError:
            raise TypeError("models must be a model name or a list of them (e.g. "
                            f"['VVV', 'EEE']), got {type(models).__name__}.") from None
        chosen = []
        for m in models:
            if not isinstance(m, str):
                raise TypeError("models must be a model name or a list of them (e.g. "
                                f"['VVV', 'EEE']), got the entry {m!r}.")
            try:  # mclust's names, as mclust spells them; a registered model's own
                chosen.append(_fam._canonical(m))
            except ValueError:
                raise ValueError(
                    f"Unknown mclust model {m!r}; use {', '.join(MCLUST_MODELS)} "
                    "(or E, V for 1-D data), or a model registered with an mstep."
                    + case_hint(m, MCLUST_MODELS + UNIVARIATE_MODELS)
                ) from None
        ours = [m for m in chosen if m not in MCLUST_MODELS + UNIVARIATE_MODELS]
        if d == 1:  # as mclust: the first letter says equal or varying variance
            mapped = [c for c in chosen if c not in ours + list(UNIVARIATE_MODELS)]
            chosen = [m for m in UNIVARIATE_MODELS if any(c[0] == m for c in chosen
                                                           if c not in ours)]
            if mapped:  # said, not silent: the result's columns are E and V
                warnings.warn(
                    f"The data are one-dimensional: model(s) {', '.join(mapped)} mean "
                    f"{', '.join(c[0] for c in mapped)} there (mclust's rule: the first "
                    "letter says equal or varying variance). Pass models=['E', 'V'] "
                    "to ask for them directly.", UserWarning, stacklevel=3)
            chosen += [m for m in ours if get_model(m).univariate]
        elif any(get_model(m).univariate for m in chosen):
            raise ValueError("Models E and V (and other univariate models) are for 1-D "
                             "data only.")
        chosen = list(dict.fromkeys(chosen))
    if prior is not None:
        chosen = [m for m in chosen if get_model(m).has_prior]  # as mclust: none for the rest
    if not chosen:
        raise ValueError("No model left to fit.")
    return chosen


def _check_scalars(tol, max_iter, random_state, n_jobs, hypvol, verbose, prior):
    """select's scalar parameters, checked before any work."""
    from .._models.prior import Prior, PriorControl
    from .._validation import check_bool, check_int, check_random_state, check_real

    tol = check_real(tol, "tol", minimum=0.0, what="a finite number >= 0 (mclust's "
                     "default is 1e-5)")
    max_iter = check_int(max_iter, "max_iter", minimum=1, allow_none=True)
    random_state = check_random_state(random_state)
    n_jobs = check_int(n_jobs, "n_jobs", allow_none=True,
                       what="None, a positive integer, or a negative one (-1: one "
                       "thread per CPU)")
    if n_jobs == 0:
        raise ValueError("n_jobs must be None, a positive integer, or a negative one "
                         "(-1: one thread per CPU), got 0.")
    hypvol = check_real(hypvol, "hypvol", minimum=0.0, inclusive=False, allow_none=True,
                        what="None (the data's hypervolume) or a finite volume > 0")
    check_bool(verbose, "verbose")
    if not (prior is None or prior is True or isinstance(prior, (Prior, PriorControl))):
        raise TypeError(f"prior must be None, True, a PriorControl (prior_control()) or "
                        f"a Prior, got {type(prior).__name__}.")
    return tol, max_iter, random_state, n_jobs, hypvol


def _check_G(G):
    """select's G: an integer or an iterable of integers, sorted and deduplicated."""
    values = [G] if np.isscalar(G) or isinstance(G, np.ndarray) and G.ndim == 0 else G
    try:
        values = list(values)
    except TypeError:
        raise TypeError(f"G must be an integer or an iterable of integers (e.g. "
                        f"range(1, 10)), got {type(G).__name__}.") from None
    from .._validation import check_int

    return sorted({check_int(g, "G", what="an integer or integers >= 0 (e.g. "
                             "range(1, 10))") for g in values})


def _noise_mask(noise, n):
    if noise is None:
        return None
    arr = np.asarray(noise)
    if arr.dtype != bool and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError("noise must be a boolean mask of the rows or integer row "
                         f"indices in [0, n), got dtype {arr.dtype}.")
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"A boolean noise mask must have one entry per row ({n}).")
        mask = arr.copy()
    else:
        idx = arr.astype(np.intp).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError("noise row indices must lie in [0, n).")
        mask = np.zeros(n, dtype=bool)
        mask[idx] = True
    if mask.all():
        raise ValueError("All observations cannot be initialised as noise.")
    return mask


# ------------------------------------------------------------------------- select
def select(X, G=None, models=None, prior=None, noise=None, *, y=None, hypvol=None,
           subset=None, tol=1e-5, max_iter=None, random_state=None, n_jobs=-1,
           verbose=False, backend="auto", nan_policy="raise"):
    """Fit a grid of Gaussian mixtures and choose one by BIC, as mclust does.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or (n_samples,), or a Source
        Data (a pandas DataFrame keeps its column names for the plots). A Source is read
        through its chunks and samples only.
    G : int or iterable of int, optional
        Numbers of components; default ``range(1, 10)`` (``range(0, 10)`` with a noise
        component). Values above the number of rows are dropped; for 1-D data, values
        above the number of distinct values are NaN cells (no starting partition).
    models : str or list of str, optional
        mclust model names (``"EII"`` ... ``"VVV"``); default all 14 (only the spherical
        and diagonal ones when ``n <= d``), or ``"E"`` and ``"V"`` for 1-D data.
    prior : optional
        A conjugate prior (mclust's ``priorControl()``), passed to the model family's
        M-step. The models mclust has no prior for (EVE, VEE, VVE, EVV) are left out.
    noise : array-like of bool (n_samples,) or of int, optional
        Rows that start in a uniform noise component (mclust's
        ``initialization = list(noise = ...)``); adds the G = 0 row.
    y : array-like of shape (n_samples,), optional
        Class labels, unlabelled rows -1 (or None/NaN): a semi-supervised fit, mclust's
        ``MclustSSC``. Labelled rows keep their class's component; G defaults to the
        number of classes (the first given G at least that); the result is a
        ``SemiSupervisedResult`` with one row of G (see ``docs/classify.md``). Not with
        a prior or a noise component.
    hypvol : float, optional
        Volume of the noise component's support (finite, > 0); default
        :func:`hypervolume` of X (a ValueError when that is 0, e.g. with a constant
        column).
    subset : array-like of int, optional
        Rows for the hierarchical initialisation (mclust's
        ``initialization$subset``, 0-based). Default: all rows, or a random subset of
        2000 when there are more.
    tol : float, default=1e-5
        EM stops when the relative change of the log-likelihood is at most ``tol``
        (a finite number >= 0).
    max_iter : int, optional
        Iteration cap per fit. Default: 10 000 (``MCLUST_MAX_ITER``; mclust has no
        cap, which no fit at mclust's tolerance comes near, and with which a fit at
        ``tol=0`` could run for ever).
    random_state : None, int or numpy Generator
        Draws the initialisation subset when one is needed.
    n_jobs : int, default=-1
        Cells fitted at once in threads (the compiled EM and NumPy's kernels release
        the GIL). -1: one per CPU; None or 1: one at a time. The results do not depend
        on it.
    verbose : bool, default=False
        Show a progress bar.
    backend : {"auto", "numba", "numpy"}, default="auto"
        How the fits and the hierarchical clustering run: "numba" compiles them (the
        optional ``fast`` extra; fits with a prior or a noise component, and any
        non-array source, run on the engine's loop anyway), "numpy" runs the engine's
        loop, "auto" is "numba" when Numba is installed. The numbers agree to rounding.
    nan_policy : {"raise", "marginalize"}, default="raise"
        "marginalize" takes NaN as coordinates missing at random (as
        :class:`gaussmix.GaussianMixture` does): every fit maximises the observed-data
        likelihood, the BIC counts it, and one component is fitted by EM instead of in
        closed form. The hierarchical start clusters the rows with each gap filled by
        its column's observed mean. Not with a prior or a noise component; the fits run
        on the engine's loop (the compiled EM does not take gaps). mclust has no
        counterpart (it imputes first, ``imputeData``).

    Returns
    -------
    SelectionResult

    Examples
    --------
    >>> import gaussmix
    >>> result = gaussmix.select(X)                           # doctest: +SKIP
    >>> result.best_model, result.best_G                      # doctest: +SKIP
    ('VEV', 2)
    >>> result.bic.loc[2, "VEV"]                              # doctest: +SKIP
    -561.728...
    """
    tol, max_iter, random_state, n_jobs, hypvol = _check_scalars(
        tol, max_iter, random_state, n_jobs, hypvol, verbose, prior)
    if nan_policy not in ("raise", "marginalize"):
        raise ValueError(f"nan_policy must be 'raise' or 'marginalize', got {nan_policy!r}.")
    source, X, col_names, feature_names = _check_data(X, nan_policy == "marginalize")
    # Gaps: without any, the fits are the ordinary ones (one pass to know, for a source).
    missing = nan_policy == "marginalize" and (
        bool(np.isnan(X).any()) if X is not None
        else any(missing_rows(chunk) is not None for chunk, _ in source.chunks()))
    if missing and (prior is not None or noise is not None):
        raise ValueError("nan_policy='marginalize' does not combine with a prior or a "
                         "noise component; impute the data first (GaussianMixture.impute).")
    if missing:
        backend = "numpy"
    n, d = source.n_rows, source.n_features
    lo, hi = ((np.nanmin(X, axis=0), np.nanmax(X, axis=0)) if X is not None
              else _extent_and_moments(source)[:2])
    constant = [col_names[j] if col_names else str(j) for j in np.flatnonzero(lo == hi)]
    backend = resolve_backend(backend)
    models = _resolve_models(models, n, d, prior)
    if y is not None:  # semi-supervised: mclust's MclustSSC
        if missing:
            raise ValueError("select(y=...) does not take missing values yet; impute "
                             "them first (GaussianMixture.impute) or drop those rows.")
        if prior is not None or noise is not None:
            raise ValueError("select(y=...) fits no prior and no noise component (as "
                             "mclust's MclustSSC); drop prior/noise, or y.")
        from .semisupervised import select_semisupervised

        return select_semisupervised(source, X, y, G, models, tol, max_iter, col_names,
                                     feature_names)
    noise_mask = _noise_mask(noise, n)
    if G is None:
        G = range(0 if noise_mask is not None else 1, 10)
    Gs = _check_G(G)
    if not Gs:
        raise ValueError("G is empty.")
    if Gs[0] < 0 or (Gs[0] == 0 and noise_mask is None):
        raise ValueError("G must be positive (or 0 with a noise component).")
    n_clusterable = n if noise_mask is None else int((~noise_mask).sum())
    Gs = [g for g in Gs if g <= n_clusterable]
    if not Gs:
        raise ValueError(f"Every G exceeds the number of rows that can be clustered "
                         f"({n_clusterable}).")

    # Rows of the hierarchical stage (mclust: a subset of 2000 rows of all the data,
    # less the noise rows), read into memory through the source.
    if subset is not None:
        # In the order given: the order of the rows settles ties in the agglomeration
        # and the numbering of the starting clusters, as in mclust.
        subset = np.asarray(subset)
        if subset.dtype == bool and subset.shape != (n,):
            raise ValueError(f"A boolean subset must have one entry per row ({n}), got "
                             f"shape {subset.shape}.")
        if subset.dtype != bool and not np.issubdtype(subset.dtype, np.integer):
            raise ValueError("subset must hold integer row indices in [0, n) (or be a "
                             f"boolean mask of the rows), got dtype {subset.dtype}.")
        rows = (np.flatnonzero(subset) if subset.dtype == bool
                else subset.astype(np.intp).ravel())
        if rows.size == 0 or rows.min() < 0 or rows.max() >= n:
            raise ValueError("subset must hold row indices in [0, n).")
        if np.unique(rows).size != rows.size:
            raise ValueError("subset holds a row more than once.")
        hc_data = take_rows(source, rows)
    elif n > HC_SUBSET:
        sample = source.sample(HC_SUBSET, np.random.default_rng(random_state))
        rows, hc_data = sample.rows, sample.X
    else:
        rows, hc_data = None, source.sample(n, None).X
    hc_data = np.asarray(hc_data, dtype=np.float64)
    if missing:  # the agglomeration needs whole rows: gaps filled for the start only
        hc_data = mean_filled(hc_data)
    if noise_mask is not None:
        keep = ~noise_mask if rows is None else ~noise_mask[rows]
        if not keep.any():
            raise ValueError("No observations in the initial subset after removing "
                             "the noise.")
        hc_data = hc_data[keep]
        rows = None if rows is None else rows[keep]
    # No starting partition into more classes than the rows of the hierarchical stage:
    # those cells are NaN (a FitError in the grid).
    need = [g for g in Gs if (1 if noise_mask is not None else 2) <= g <= hc_data.shape[0]]
    partitions = starting_partitions(hc_data, need, backend=backend) if need else {}

    log_vinv = None
    if noise_mask is not None:
        vol = hypervolume(source if X is None else X) if hypvol is None else hypvol
        if not (np.isfinite(vol) and vol > 0):
            raise ValueError(
                f"The data's hypervolume is {vol!r} (a constant column, or a scale "
                "beyond floating point), so a uniform noise component has no density; "
                "pass hypvol= a positive finite volume, or drop constant columns.")
        log_vinv = -math.log(vol)

    @lru_cache(maxsize=None)
    def data_for_prior():
        return X if X is not None else single_stats(source)  # the moments it reads

    @lru_cache(maxsize=None)
    def resolved_prior(g, name):
        # mclust resolves the default prior on all the data, per G and model (the
        # class of one component for G = 1 without noise).
        from .._models.prior import resolve_prior

        return resolve_prior(prior, data_for_prior(), g, name)

    def prior_for(g, name):
        if prior is None:
            return None
        if g == 1 and noise_mask is None:
            return resolved_prior(1, get_model(name).one_component_class(d))
        return resolved_prior(g, name)

    bic = np.full((len(Gs), len(models)), np.nan)
    icl = np.full_like(bic, np.nan)
    loglik = np.full_like(bic, np.nan)
    n_iter = np.zeros(bic.shape, dtype=np.int64)
    best_cell, best_key = None, None
    log_n = math.log(n)

    progress = None
    if verbose:
        from tqdm.auto import tqdm

        progress = tqdm(total=len(Gs) * len(models), desc="select", unit="fit")

    def n_params(name, g):
        k = _n_mclust_params(name, g, d)
        return k + 2 if noise_mask is not None else k

    def consider(cell, gi, mi, bic_value, icl_value):
        nonlocal best_cell, best_key
        bic[gi, mi], icl[gi, mi] = bic_value, icl_value
        key = (-bic_value, str(cell.G), cell.model)  # mclust's pickBIC order
        if best_key is None or key < best_key:
            best_key, best_cell = key, cell

    grid = _Grid(source, hc_data, partitions, rows, noise_mask, log_vinv, tol, max_iter,
                 prior, prior_for, backend, missing)
    # One component: one closed-form fit per class of coinciding models, done first so
    # the cells can then be fitted in any order (or in parallel).
    if noise_mask is None and 1 in Gs:
        with single_threaded_blas():
            for name in models:
                grid.one_component(name)

    def fit(task):
        gi, mi = task
        g, name = Gs[gi], models[mi]
        if g == 0:  # the noise component alone
            return _Cell(name, 0, None, n * log_vinv, 0, True, 0.0, 1.0)
        try:
            cell = grid.fit(name, g)
        except FitError:  # a failed fit is a NaN cell, as mclust's NA
            return None
        return cell if np.isfinite(cell.loglik) else None

    tasks = [(gi, mi) for gi in range(len(Gs)) for mi in range(len(models))]
    workers = _n_workers(n_jobs, len(tasks))

    def timed(task):
        start = time.perf_counter()
        # One BLAS limit per cell (a thread's), not one per E-step: setting it costs more
        # than a small cell's E-step. Within the serial loop's own limit, none.
        with single_threaded_blas():
            cell = fit(task)
        return cell, time.perf_counter() - start

    def finished(task, seconds):
        # The bar moves as each cell ends (not in grid order) and names it.
        if progress is not None:
            gi, mi = task
            progress.set_postfix_str(f"{models[mi]} G={Gs[gi]} took {seconds:.2g} s",
                                     refresh=False)
            progress.update()

    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        from threadpoolctl import threadpool_limits

        # NumPy releases the GIL in its kernels: cells run side by side, each with a
        # single-threaded BLAS so the threads do not oversubscribe the cores.
        results = {}
        with threadpool_limits(limits=1), ThreadPoolExecutor(workers) as pool:
            futures = {pool.submit(timed, task): task for task in tasks}
            for future in as_completed(futures):
                task = futures[future]
                results[task], seconds = future.result()
                finished(task, seconds)
        results = [results[task] for task in tasks]
    else:
        results = []
        with single_threaded_blas():  # one limit for the grid: 12 ms of a MclustDA fit
            for task in tasks:
                cell, seconds = timed(task)
                results.append(cell)
                finished(task, seconds)
    for (gi, mi), cell in zip(tasks, results):
        if cell is None:
            continue
        loglik[gi, mi] = cell.loglik
        n_iter[gi, mi] = cell.n_iter
        if cell.G == 0:
            value = 2.0 * cell.loglik - log_n
        else:
            value = 2.0 * cell.loglik - n_params(cell.model, cell.G) * log_n
        consider(cell, gi, mi, value, value + 2.0 * cell.map_loglik)
    if progress is not None:
        progress.close()

    if constant:  # said here and in the summary: else the NaN cells go unexplained
        warnings.warn(_constant_note(constant, bic), UserWarning, stacklevel=2)
    return SelectionResult(
        source=source, X=X, column_names=col_names, feature_names=feature_names,
        tables=_Tables(Gs, models, bic, icl, loglik, n_iter),
        cell=best_cell, n_params=(n_params(best_cell.model, best_cell.G)
                                  if best_cell is not None and best_cell.G > 0 else
                                  (1 if best_cell is not None else None)),
        prior=prior, prior_for=prior_for, noise_mask=noise_mask,
        hypvol=None if log_vinv is None else math.exp(-log_vinv),
        subset=rows, refine=(rows is not None and noise_mask is None),
        constant_columns=constant, nan_policy=nan_policy,
    )


@lru_cache(maxsize=4096)
def _n_mclust_params(name, g, d):
    # cached: a MclustDA fit asks some 200 times, for a dozen distinct answers
    return int(_fam.n_mclust_params(name, g, d))


class _Tables:
    """The grid's tables as arrays (rows G, columns models): the DataFrames are built
    when asked for (pandas' Index and frames cost 1 ms a select, which a MclustDA fit
    of three classes would pay for tables it never shows)."""

    def __init__(self, Gs, models, bic, icl, loglik, n_iter):
        self.Gs, self.models = list(Gs), list(models)
        self.arrays = {"bic": bic, "icl": icl, "loglik": loglik, "n_iter": n_iter}

    def frame(self, name):
        import pandas as pd

        return pd.DataFrame(self.arrays[name], index=pd.Index(self.Gs, name="G"),
                            columns=pd.Index(self.models, name="model"))

    def value(self, name, G, model):
        return float(self.arrays[name][self.Gs.index(G), self.models.index(model)])


def _grid_table(name):
    """A result's attribute: the grid's table ``name``, a DataFrame built when read."""
    return functools.cached_property(lambda self: self._tables.frame(name))


def _constant_note(constant, bic):
    shown = ", ".join(constant[:10]) + (", ..." if len(constant) > 10 else "")
    failed = int(np.isnan(bic).sum())
    cells = (f"{failed} of {bic.size} cells failed, NaN" if failed else
             f"none of the {bic.size} cells failed")
    return (f"The data have {len(constant)} constant column(s) ({shown}): a model with a "
            f"variance per column cannot be fitted to them ({cells}). Drop the constant "
            "columns, or pass a prior.")


def _n_workers(n_jobs, n_tasks):
    if n_jobs is None or n_jobs == 1:
        return 1
    import os

    cpus = os.cpu_count() or 1
    workers = cpus + 1 + n_jobs if n_jobs < 0 else int(n_jobs)
    return max(1, min(workers, n_tasks))


class _Cell:
    """What one fitted cell leaves for the tables and the summary."""

    def __init__(self, model, G, fit, loglik, n_iter, converged, map_loglik,
                 noise_proportion=0.0):
        self.model, self.G, self.fit = model, G, fit
        self.loglik, self.n_iter, self.converged = float(loglik), int(n_iter), converged
        self.map_loglik = float(map_loglik)
        self.noise_proportion = float(noise_proportion)

    @classmethod
    def of(cls, fit, G, model=None):
        return cls(model or fit.model, G, fit, fit.loglik, fit.n_iter, fit.converged,
                   fit.map_loglik, fit.noise_proportion or 0.0)

    @property
    def params(self):
        return None if self.fit is None else self.fit.params


class _Grid:
    """How each cell of select's grid starts and runs (mclust's conventions)."""

    def __init__(self, source, hc_data, partitions, rows, noise_mask, log_vinv, tol,
                 max_iter, prior, prior_for, backend, missing=False):
        self.source, self.hc_data, self.partitions = source, hc_data, partitions
        self.missing = missing
        self.rows, self.noise_mask, self.log_vinv = rows, noise_mask, log_vinv
        self.tol, self.max_iter, self.backend = tol, max_iter, backend
        # The prior as given (resolved on the subset for its M-step) and per cell.
        self.prior, self.prior_for = prior, prior_for
        self.singles = {}
        self._single_stats = None  # the rows' statistics as one component
        self._one_hot = None  # (g, the partition into g as responsibilities)

    def _run(self, name, g, start, fixed=None):
        return fit_mclust(self.source, name, g, start, fixed=fixed, tol=self.tol,
                          max_iter=self.max_iter, prior=self.prior_for(g, name),
                          noise_log_density=self.log_vinv, backend=self.backend,
                          missing=self.missing)

    def one_component(self, name):
        """G = 1 in closed form, once per class of models that coincide (mclust's mvn)."""
        key = get_model(name).single_class
        if key not in self.singles:
            if self._single_stats is None:
                self._single_stats = single_stats(self.source)
            try:
                self.singles[key] = self._run(name, 1, self._single_stats)
            except FitError as exc:
                self.singles[key] = exc

    def _partition_start(self, g):
        """The starting partition into g as responsibilities, made once for all the
        models (the cells run G by G; each fit copies it)."""
        cached = self._one_hot
        if cached is None or cached[0] != g:
            cached = self._one_hot = (g, one_hot(self.partitions[g], g))
        return cached[1]

    def fit(self, name, g) -> _Cell:
        """Fit cell (name, g); raises FitError where mclust reports NA."""
        n = self.source.n_rows
        if g > 1 and g not in self.partitions:
            # No starting partition: fewer rows (or 1-D distinct values) than g.
            raise FitError(f"no starting partition into {g} classes")
        if self.noise_mask is None:
            if g == 1:
                found = self.singles[get_model(name).single_class]
                if isinstance(found, Exception):
                    raise found
                return _Cell.of(found, 1, model=name)
            if self.rows is None:
                return _Cell.of(self._run(name, g, self._partition_start(g)), g)
            # Initialise on the subset: an M-step there, an E-step on all rows.
            params = _subset_params(name, self.hc_data, self.partitions[g], g,
                                    self.prior, None)
            return _Cell.of(self._run(name, g, params), g)
        noise = self.noise_mask
        partition = self.partitions[g] if g > 1 else np.zeros(self.hc_data.shape[0],
                                                               dtype=np.intp)
        if self.rows is None:
            labels = np.full(n, g, dtype=np.intp)
            labels[np.flatnonzero(~noise)] = partition
            return _Cell.of(self._run(name, g, labels), g)
        params = _subset_params(name, self.hc_data, partition, g, self.prior,
                                self.log_vinv)
        fixed = np.where(noise, g, -1).astype(np.intp)
        return _Cell.of(self._run(name, g, params, fixed=fixed), g)


class SelectionResult:
    """What :func:`select` found.

    Attributes
    ----------
    bic, icl : pandas.DataFrame
        Index G, one column per model; NaN where the fit failed. Larger is better.
    loglik : float
        Log-likelihood of the best model.
    loglik_table : pandas.DataFrame
        Log-likelihood of every cell.
    n_iter : pandas.DataFrame
        EM iterations of every cell.
    best_model : str
        mclust name of the best model, e.g. ``"VEV"``.
    best_G : int
        Its number of (Gaussian) components.
    best : GaussianMixture or None
        The best model as a fitted :class:`gaussmix.GaussianMixture` (predict,
        predict_proba, score_samples, sample work). With a noise component it holds the
        Gaussian components only, their weights rescaled to sum to one; None when the
        best model is the noise component alone.
    z : ndarray of shape (n, G) or (n, G + 1)
        Responsibilities of the best fit (noise column last).
    classification : ndarray of shape (n,)
        Most probable component of each row, 0-based; -1 for the noise component.
    uncertainty : ndarray of shape (n,)
        ``1 - max_k z_ik``.
    df : int
        Number of free parameters of the best model.
    bic_value, icl_value : float
        BIC and ICL of the best model.
    n, d : int
        Rows and columns of the data.
    hypvol : float or None
        Volume of the noise component's support.
    noise_proportion : float
        Weight of the noise component (0 without one).
    constant_columns : list of str
        The data's constant columns (names, or 0-based indices as strings): a model with
        a variance per column fails on them. :func:`select` warns and the summary says so.
    """

    def __init__(self, *, source, X, column_names, feature_names, tables, cell, n_params,
                 prior, prior_for, noise_mask, hypvol, subset, refine,
                 constant_columns=(), nan_policy="raise"):
        self.X = X
        self.constant_columns = list(constant_columns)
        self.column_names = column_names
        self._tables = tables
        self.prior = prior
        self.hypvol = hypvol
        self.noise = noise_mask is not None
        self.subset = subset
        self.n, self.d = source.n_rows, source.n_features
        if cell is None:
            raise FitError(
                "None of the models could be fitted: every cell of the grid failed. Try "
                "fewer components, other models, or a prior."
            )
        self.best_model = cell.model
        self.best_G = int(cell.G)
        self.loglik = float(cell.loglik)
        self.df = int(n_params)
        self.bic_value = tables.value("bic", cell.G, cell.model)
        self.icl_value = tables.value("icl", cell.G, cell.model)
        # The best fit's responsibilities: one more pass over the rows (the compiled
        # backend has them already).
        if cell.G == 0:
            z = np.ones((self.n, 1))
        elif cell.fit.z is not None:
            z = cell.fit.z
        else:
            z = responsibilities(source, cell.params)
        self.z = z
        labels = _map(z)
        if self.noise:
            labels = np.where(labels == cell.G, -1, labels)
        self.classification = labels
        self.uncertainty = 1.0 - z.max(axis=1)
        self.noise_proportion = float(cell.noise_proportion)
        params = cell.params
        if params is not None and not self.noise and cell.G > 1:
            params = self._final_mstep(source, cell, z, refine, prior_for)
        self.params = params
        self._best_of = (cell, feature_names, nan_policy)

    bic, icl = _grid_table("bic"), _grid_table("icl")
    loglik_table, n_iter = _grid_table("loglik"), _grid_table("n_iter")

    @functools.cached_property
    def best(self):
        # Built on first use: the estimator imports scikit-learn (a second or more),
        # which a command that only prints the table never needs.
        if self.params is None:
            return None
        cell, feature_names, nan_policy = self._best_of
        gm = _as_estimator(self.params, cell, self.n, self.d, feature_names)
        # it predicts on rows with gaps as it was fitted
        return gm.set_params(nan_policy=nan_policy)

    @staticmethod
    def _final_mstep(source, cell, z, force, prior_for):
        """mclust's extra M-step of the summary when the weights lag the z's."""
        params = cell.params
        lag = float(((params.weights - z.mean(axis=0)) ** 2).sum())
        # mclust keeps the step only when mstep's returnCode is 0, which the M-steps of
        # VEE, EVE, VVE and VEV never return (they say 2 on success): none for them.
        if not (force or lag > _RTEPS) or cell.model in ("VEE", "EVE", "VVE", "VEV"):
            return params
        model = get_model(cell.model)
        stats = cell.fit.stats
        if stats is None:  # the compiled backend: the statistics of its final z
            stats = given_stats(source, cell.G, model.stats_kind,
                                lambda a, chunk: z[a : a + chunk.shape[0]])
        mstep = MStep(model, prior=prior_for(cell.G, cell.model), strict=True)
        try:
            return mstep(stats, cell.fit.state)[0]
        except FitError:
            return params

    # ---------------------------------------------------------------- reporting
    def top(self, k=3, criterion="BIC") -> "list[tuple[str, int, float]]":
        """The ``k`` best cells as (model, G, value), best first (mclust's pickBIC)."""
        table = self._table(criterion)
        cells = [(-v, str(g), m, g) for g, row in table.iterrows()
                 for m, v in row.items() if np.isfinite(v)]
        cells.sort()
        return [(m, int(g), -negv) for negv, _, m, g in cells[:k]]

    def _table(self, criterion):
        crit = criterion.upper()
        if crit not in ("BIC", "ICL"):
            raise ValueError(f"criterion must be 'BIC' or 'ICL', got {criterion!r}.")
        return self.bic if crit == "BIC" else self.icl

    def summary(self) -> str:
        """A report in the spirit of mclust's ``summary(Mclust(X))``."""
        title = "Gaussian finite mixture model fitted by EM algorithm"
        rule = "-" * len(title)
        lines = [rule, title, rule, ""]
        if self.best_G == 0:
            lines.append("Mclust model with only a noise component:")
        else:
            model = get_model(self.best_model)
            kind = (model.mclust_type if self.best_G > 1 else
                    {"X": "univariate normal", "XII": "spherical multivariate normal",
                     "XXI": "diagonal multivariate normal",
                     "XXX": "ellipsoidal multivariate normal"}[model.single_class])
            comps = "components" if self.best_G > 1 else "component"
            lines.append(
                f"Mclust {self.best_model} ({kind}) model with {self.best_G} {comps}"
                + (" and a noise term" if self.noise else "") + ":"
            )
        lines.append("")
        header = ["log-likelihood", "n", "df", "BIC", "ICL"]
        values = [f"{self.loglik:.4f}", str(self.n), str(self.df),
                  f"{self.bic_value:.4f}", f"{self.icl_value:.4f}"]
        widths = [max(len(h), len(v)) for h, v in zip(header, values)]
        lines.append(" ".join(h.rjust(w) for h, w in zip(header, widths)))
        lines.append(" ".join(v.rjust(w) for v, w in zip(values, widths)))
        lines.append("")
        lines.append("Best BIC values:")
        best = self.top(3)
        names = [f"{m},{g}" for m, g, _ in best]
        vals = [f"{v:.4f}" for _, _, v in best]
        diffs = [f"{v - best[0][2]:.4f}" for _, _, v in best]
        widths = [max(len(a), len(b), len(c)) for a, b, c in zip(names, vals, diffs)]
        lines.append("         " + " ".join(s.rjust(w) for s, w in zip(names, widths)))
        lines.append("BIC      " + " ".join(s.rjust(w) for s, w in zip(vals, widths)))
        lines.append("BIC diff " + " ".join(s.rjust(w) for s, w in zip(diffs, widths)))
        lines.append("")
        lines.append("Clustering table:")
        labels, counts = np.unique(self.classification, return_counts=True)
        # mclust numbers components from 1 and the noise as 0; the table shows ours.
        order = np.argsort(np.where(labels < 0, np.iinfo(np.int64).max, labels))
        heads = ["noise" if labels[i] < 0 else str(labels[i]) for i in order]
        cnts = [str(counts[i]) for i in order]
        widths = [max(len(a), len(b)) for a, b in zip(heads, cnts)]
        lines.append(" ".join(h.rjust(w) for h, w in zip(heads, widths)))
        lines.append(" ".join(c.rjust(w) for c, w in zip(cnts, widths)))
        if self.constant_columns:
            lines += ["", _constant_note(self.constant_columns, self.bic.to_numpy())]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        noise = " + noise" if self.noise else ""
        return (f"<SelectionResult best=({self.best_model},{self.best_G}){noise} "
                f"BIC={self.bic_value:.4f} n={self.n} d={self.d} "
                f"grid={self.bic.shape[0]}x{self.bic.shape[1]}>")

    # -------------------------------------------------------------------- plots
    def plot_bic(self, criterion="BIC", *, ax=None, models=None):
        """Criterion against G, one line per model (mclust's ``plot(mclustBIC)``).

        Parameters
        ----------
        criterion : {"BIC", "ICL"}
        ax : matplotlib Axes, optional
        models : list of str, optional
            Models to draw (default all).

        Returns
        -------
        matplotlib.figure.Figure
        """
        table = self._table(criterion)
        if models is not None:
            table = table[list(models)]
        return _plot_criterion(table, criterion.upper(), ax=ax)

    def plot_classification(self, *, dims=None, ax=None):
        """The data coloured by the best model's classification, with its ellipses.

        Parameters
        ----------
        dims : sequence of int, optional
            Columns to show (default all, at most 5); a pairs grid when more than 2.
        ax : matplotlib Axes, optional
            For one or two dims only.

        Returns
        -------
        matplotlib.figure.Figure
        """
        return _plot_points(self, "classification", dims=dims, ax=ax)

    def plot_uncertainty(self, *, dims=None, ax=None):
        """The data with each row drawn larger and darker the more uncertain it is.

        Parameters
        ----------
        dims : sequence of int, optional
        ax : matplotlib Axes, optional

        Returns
        -------
        matplotlib.figure.Figure
        """
        return _plot_points(self, "uncertainty", dims=dims, ax=ax)


def _as_estimator(params, cell, n_rows, n_features, feature_names):
    """A fitted :class:`gaussmix.GaussianMixture` holding ``params`` (the Gaussian
    components; with a noise component their weights rescaled to sum to one)."""
    from .._estimator import GaussianMixture, set_fitted

    gm = GaussianMixture(n_components=int(cell.G), covariance_type=cell.model)
    weights = np.asarray(params.weights, dtype=np.float64)
    gaussian = replace(params, weights=weights / weights.sum(), noise_log_density=None,
                       noise_proportion=0.0)
    mean_loglik = cell.loglik / n_rows
    return set_fitted(gm, gaussian, n_features=n_features, converged=cell.converged,
                      n_iter=cell.n_iter, lower_bound=mean_loglik,
                      lower_bounds=[mean_loglik], feature_names=feature_names)


# -------------------------------------------------------------------------- plots
# mclust's bicPlotSymbols and bicPlotColors, in matplotlib's terms: gray and black for
# the spherical models, a forestgreen -> royalblue -> red ramp for the twelve others.
_MARKERS = {"EII": "^", "VII": "^", "EEI": "o", "EVI": "o", "VEI": "X", "VVI": "o",
            "EEE": "s", "VEE": "*", "EVE": "D", "VVE": "P", "EEV": "s", "VEV": "x",
            "EVV": "h", "VVV": "s", "E": "^", "V": "^"}
_FILLED = {"EII", "EEI", "EEE", "EVE", "VEE", "EVV", "VEI", "E"}
_RAMP = ("EEI", "EVI", "VEI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV",
         "VVV")


def _model_color(name):
    if name in ("EII", "E"):
        return (0.745, 0.745, 0.745)
    if name in ("VII", "V"):
        return (0.0, 0.0, 0.0)
    stops = np.array([[0.133, 0.545, 0.133], [0.282, 0.463, 1.0], [0.804, 0.0, 0.0]])
    t = _RAMP.index(name) / (len(_RAMP) - 1) * 2.0
    k = min(int(t), 1)
    return tuple(stops[k] + (stops[k + 1] - stops[k]) * (t - k))


def _new_figure(figsize):
    """pyplot's figure when pyplot is in use, else a bare Agg one (headless-safe)."""
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _plot_criterion(table, label, ax=None):
    if ax is None:
        ax = _new_figure((7.0, 5.0)).add_subplot()
    x = np.asarray(table.index, dtype=float)
    for name in table.columns:
        y = table[name].to_numpy(dtype=float)
        color = _model_color(name)
        ax.plot(x, y, "-", color=color, lw=1.2, marker=_MARKERS.get(name, "o"),
                markerfacecolor=color if name in _FILLED else "none",
                markeredgecolor=color, label=name)
    ax.set_xticks(x)
    ax.set_xlabel("Number of components")
    ax.set_ylabel(label)
    ax.legend(loc="lower right", ncol=2, fontsize="small", frameon=True)
    return ax.figure


def _ellipse(ax, mean, cov, color):
    from matplotlib.patches import Ellipse

    from ..plot import ellipse_geometry

    # One standard deviation, as mclust draws them.
    width, height, angle = ellipse_geometry(cov)
    ax.add_patch(Ellipse(mean, width, height, angle=angle, fill=False, color=color,
                         lw=1.2))


def _plot_points(result, what, dims=None, ax=None):
    from matplotlib import colormaps

    X = result.X
    d = X.shape[1]
    dims = list(range(min(d, 5))) if dims is None else [int(i) for i in dims]
    if not dims or min(dims) < 0 or max(dims) >= d or len(set(dims)) != len(dims):
        raise ValueError(f"dims must be distinct column indices in [0, {d}).")
    names = result.column_names or [f"x{i}" for i in range(d)]
    labels = result.classification
    cmap = colormaps["tab10" if result.best_G <= 10 else "tab20"]
    colors = np.array([cmap(k % cmap.N) for k in range(max(result.best_G, 1))])
    point_colors = np.where(labels[:, None] >= 0, colors[np.maximum(labels, 0)],
                            np.array([0.0, 0.0, 0.0, 1.0]))
    unc = result.uncertainty
    if what == "uncertainty":
        # mclust: the most uncertain rows large and black, the least small and light.
        cut = np.quantile(unc, [0.75, 0.95]) if unc.size else [0, 0]
        sizes = np.where(unc > cut[1], 36.0, np.where(unc > cut[0], 16.0, 4.0))
        shades = np.where(unc > cut[1], 0.0, np.where(unc > cut[0], 0.45, 0.75))
        point_colors = np.column_stack([shades, shades, shades, np.ones_like(shades)])
    else:
        sizes = np.where(labels >= 0, 12.0, 4.0)
    covs = None if result.params is None else result.params.full_covariances()
    means = None if result.params is None else np.asarray(result.params.means)

    def panel(axis, a, b):
        if b is None:  # one dimension: values against their class
            y = np.where(labels >= 0, labels, -1) if what == "classification" else unc
            axis.scatter(X[:, a], y, s=sizes, c=point_colors, linewidths=0)
            axis.set_xlabel(names[a])
            axis.set_ylabel("component" if what == "classification" else "uncertainty")
            return
        axis.scatter(X[:, a], X[:, b], s=sizes, c=point_colors, linewidths=0)
        if means is not None and what == "classification":
            for k in range(means.shape[0]):
                sub = covs[k][np.ix_([a, b], [a, b])]
                _ellipse(axis, means[k, [a, b]], sub, colors[k])
                axis.plot(*means[k, [a, b]], "+", color="k", ms=8)

    if len(dims) <= 2:
        if ax is None:
            ax = _new_figure((6.0, 5.0)).add_subplot()
        if len(dims) == 1:
            panel(ax, dims[0], None)
        else:
            panel(ax, dims[0], dims[1])
            ax.set_xlabel(names[dims[0]])
            ax.set_ylabel(names[dims[1]])
        ax.set_title(what.capitalize())
        return ax.figure
    if ax is not None:
        raise ValueError("ax can be given for one or two dims only; more make a grid.")
    m = len(dims)
    fig = _new_figure((2.2 * m, 2.2 * m))
    grid = fig.subplots(m, m, squeeze=False)
    for r, a in enumerate(dims):
        for c, b in enumerate(dims):
            axis = grid[r][c]
            if r == c:
                axis.text(0.5, 0.5, names[a], ha="center", va="center",
                          transform=axis.transAxes)
                axis.set_xticks([])
                axis.set_yticks([])
            else:
                panel(axis, b, a)
                axis.tick_params(labelsize="x-small")
    fig.suptitle(what.capitalize())
    return fig
