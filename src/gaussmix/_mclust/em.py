"""mclust's EM for one model: the engine's loop with mclust's policy, or the compiled twin.

:func:`fit_mclust` is the one contract both backends honour: the same inputs (a Source,
a model, a start), the same result (:class:`MclustFit`) and the same failures (a
:class:`~gaussmix.FitError` where mclust reports NA).

* ``backend="numpy"``: the engine's one loop (:func:`~gaussmix._engine.loop.run_em`)
  with :func:`~gaussmix._engine.loop.mclust_policy` and the strict M-step, over any
  Source, with mclust's conjugate prior and noise component.
* ``backend="numba"``: :mod:`gaussmix._mclust.fast_em`, the same algorithm compiled into
  one call per fit, for the grids of many small fits where Python's per-iteration
  overhead dominates (``select``). It needs the rows in memory and supports neither a
  prior nor a noise component.

mclust's conventions: from a partition (``labels``) EM starts with an M-step; it stops
when ``|l_t - l_{t-1}| / (1 + |l_t|) <= tol``; one component (without noise) is fitted in
closed form (``mvn``), counted as one iteration.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .._engine import estep
from .._engine.init import given_stats, one_hot
from .._engine.loop import mclust_policy, run_em
from .._engine.mstep import MStep
from .._engine.params import Params
from .._engine.producers import row_pass, thread_pass
from .._engine.sources import ArraySource
from .._engine.stats import SuffStats
from .._errors import DegenerateCovarianceError, NonFiniteLikelihoodError
from .._models.mclust import _canonical, unmap
from .._models.numerics import MCLUST_MAX_ITER
from .._models.registry import get_model
from . import fast_em
from .. import _first_run as first_run
from .._first_run import announce
from .result import MclustFit, MclustParams

BACKENDS = ("auto", "numpy", "numba")


def compiled_available() -> bool:
    """Whether the compiled backend can run (Numba is installed)."""
    return fast_em.AVAILABLE


def resolve_backend(backend: str) -> str:
    """"auto" -> "numba" when Numba is installed, else "numpy"; checks the name.

    With a cold Numba cache (the first run after installing), "auto" is "numpy" while a
    separate process compiles the kernels (see :mod:`.._first_run`).
    """
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}.")
    if backend == "auto":
        if not compiled_available():
            return "numpy"
        from . import hc_fast

        if (first_run.cold(fast_em._em, hc_fast._agglomerate)
                and first_run.compile_in_background()):
            return "numpy"
        return "numba"
    if backend == "numba" and not compiled_available():
        raise ValueError("backend='numba' needs Numba: pip install 'gaussmix[fast]'.")
    return backend


def fit_mclust(source, name: str, n_components: int, start, *, fixed=None,
               tol: float = 1e-5, max_iter: int | None = None, prior=None,
               noise_log_density: float | None = None,
               backend: str = "numpy", missing: bool = False) -> MclustFit:
    """Fit one mclust model by EM, as mclust's ``me`` (or ``mvn`` for one component).

    Parameters
    ----------
    source : Source
    name : str
        mclust model name (a registered model).
    n_components : int
        G, the Gaussian components.
    start : ndarray of int (n_rows,), ndarray (n_rows, G [+ 1]), SuffStats or Params
        A partition (labels 0 .. G - 1, G for the noise component), responsibilities
        (noise column last) or their statistics (of the loop's kind; "full" for one
        component): EM starts with an M-step. Or parameters: an E-step first; with
        ``fixed``, the rows labelled there keep their component in that E-step (mclust's
        noise rows) and EM then starts with an M-step from it.
    tol, max_iter :
        mclust's relative tolerance and iteration cap (None: ``MCLUST_MAX_ITER``,
        10 000; mclust's default is no cap).
    prior : Prior, optional
        A resolved conjugate prior (mclust's MAP M-steps).
    noise_log_density : float, optional
        ``log(Vinv)`` of mclust's uniform noise component; None: no noise.
    backend : {"numpy", "numba"}
        The engine's loop, or the compiled twin (for mclust's models without prior or
        noise, rows in memory; otherwise the loop runs).
    missing : bool, default=False
        The rows may have NaN (missing coordinates, marginalised): the loop runs, and
        one component is fitted by EM (there is no closed form).

    Returns
    -------
    MclustFit

    Raises
    ------
    FitError
        mclust would report NA: a component vanished, a covariance became singular, or
        the log-likelihood is not finite.
    """
    model = get_model(name)
    if model.univariate and source.n_features != 1:
        raise ValueError(f"model {name} is for one-dimensional data")
    noise = noise_log_density is not None
    # One component: mclust's closed form, whose M-step reads "full" statistics; with
    # gaps that M-step is iterated (EM), as no closed form exists.
    one = n_components == 1 and not noise
    single = one and not missing
    given = isinstance(start, np.ndarray)
    summed = isinstance(start, SuffStats)
    in_memory = getattr(source, "X", None) is not None
    compiled = model.fast_code is not None and in_memory
    if (backend == "numba" and compiled and not single and prior is None and not noise
            and not missing and not summed):
        return _fit_compiled(source, model.name, n_components, start, tol, max_iter)
    kind = "full" if one else model.stats_kind
    if backend == "numba" and single and in_memory:
        return _fit_single(source, model, prior, start if summed else None)
    if given:
        width = n_components + noise
        if start.ndim == 1:
            resp_of = lambda a, chunk: one_hot(start[a : a + chunk.shape[0]], width)
        else:
            resp_of = lambda a, chunk: start[a : a + chunk.shape[0]]
        start = given_stats(source, n_components, kind, resp_of)
    elif fixed is not None:
        # The rows' noise-free E-step, the fixed rows kept: then an M-step first.
        start = thread_pass(source, kind, labels=fixed)(
            replace(start, noise_log_density=noise_log_density, noise_proportion=0.0))
    mstep = MStep(model, prior=prior, strict=True, noise_log_density=noise_log_density)
    budget = 1 if single else (MCLUST_MAX_ITER if max_iter is None else int(max_iter))
    result = run_em(thread_pass(source, kind), mstep, start, mclust_policy(tol),
                    max_iter=budget)
    history = result.log_likelihoods
    if isinstance(start, Params):  # the start's own E-step is not an iteration
        history = history[1:]
    return MclustFit(MclustParams.of(result.params, model.name, result.state),
                     result.loglik, result.n_iter, single or result.converged,
                     tuple(history), result.stats.map_loglik, model.name, result.stats)


def _fit_single(source, model, prior, stats=None) -> MclustFit:
    """One component on rows in memory: the loop's M-step (mclust's ``mvn``) on the
    rows' statistics, and the log-likelihood from them instead of a pass over the rows,
    sum_i w_i log N(x_i) = W (log det U - d log(2 pi) / 2) - tr(P S_m) / 2, with P = U U^T
    the precision and S_m the scatter about the fitted mean (mclust's may differ from
    the rows' mean: a prior, constant columns). A select grid fits three of these per
    class of the data (the loop's passes cost 0.5 ms a fit on a hundred rows), from
    one set of the rows' ``stats`` (None: summed here)."""
    if stats is None:
        stats = single_stats(source)
    params, state = MStep(model, prior=prior, strict=True)(stats)
    weight, d = stats.nk[0], stats.means.shape[1]
    offset = stats.means[0] - params.means[0]
    scatter = stats.scatter[0] + weight * np.outer(offset, offset)
    precision = params.precisions()  # tr(P S_m) in the family's layout
    if params.family == "full":
        quad = np.sum(precision[0] * scatter)
    elif params.family == "tied":
        quad = np.sum(precision * scatter)
    elif params.family == "diag":
        quad = np.dot(precision[0], np.diag(scatter))
    else:
        quad = precision[0] * np.trace(scatter)
    loglik = float(weight * (params.log_det_cholesky[0] - 0.5 * d * estep.LOG_2PI)
                   - 0.5 * quad)
    if not np.isfinite(loglik):
        raise NonFiniteLikelihoodError("cannot compute E-step (non-finite log-likelihood)")
    return MclustFit(MclustParams.of(params, model.name, state), loglik, 1, True,
                     (loglik,), 0.0, model.name, None, np.ones((source.n_rows, 1)))


def single_stats(source) -> SuffStats:
    """The "full" statistics of every row as one component: the start of a fit of one
    component (every model's, so a grid sums them once)."""
    return given_stats(source, 1, "full",
                       labels_of=lambda a, chunk: np.zeros(chunk.shape[0], np.intp))


def _fit_compiled(source, name, n_components, start, tol, max_iter) -> MclustFit:
    X = np.asarray(source.X, dtype=np.float64)
    if isinstance(start, Params):
        z = estep.responsibilities(X, start)
    else:
        z = one_hot(start, n_components) if start.ndim == 1 else start
    try:
        announce(fast_em._em)  # a cold cache: say so before minutes of compiling
        return fast_em.fast_mclust_em(X, name, z, tol=tol, max_iter=max_iter)
    except np.linalg.LinAlgError as exc:
        # The compiled eigensolver refuses a scatter that overflowed (data near 1e160
        # and beyond): no covariance can be estimated, mclust's NA as on the loop.
        raise DegenerateCovarianceError(
            f"singular covariance (model {name}: {exc}; rescale the data)") from exc


def responsibilities(source, params: Params) -> np.ndarray:
    """The rows' responsibilities under ``params`` (a noise column last if it has one)."""
    return row_pass(source, lambda chunk: estep.responsibilities(chunk, params))


def _as_2d(X):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError("X must be a 1-D or 2-D array")
    return X


def _as_z(z_init, n):
    z = np.asarray(z_init)
    if z.ndim == 1:
        if not np.issubdtype(z.dtype, np.integer) or (z.size and z.min() < 0):
            raise ValueError("z_init must be integer labels 0 .. G-1 (one per row) or "
                             "an (n, G) array of responsibilities in [0, 1].")
        z = unmap(z)
    if z.ndim != 2 or not (np.issubdtype(z.dtype, np.number) or z.dtype == bool):
        raise ValueError("z_init must be integer labels 0 .. G-1 (one per row) or an "
                         f"(n, G) array of responsibilities in [0, 1], got shape "
                         f"{z.shape} of dtype {z.dtype}.")
    z = np.asarray(z, dtype=np.float64)
    if z.shape[0] != n:
        raise ValueError("z_init and X must have the same number of rows")
    if np.any(~np.isfinite(z)) or np.any(z < 0) or np.any(z > 1):
        raise ValueError("improper specification of z (values must lie in [0, 1])")
    return z


def mclust_em(X, model_name: str, z_init, tol: float = 1e-5, max_iter: int | None = None,
              prior=None, noise_vinv: float | None = None,
              backend: str = "numpy") -> MclustFit:
    """mclust's ``me`` on an in-memory array, from a partition or responsibilities.

    EM stops when the relative change of the log-likelihood is at most ``tol`` or after
    ``max_iter`` iterations (None: ``MCLUST_MAX_ITER``, 10 000, where mclust has no
    cap).

    mclust's call shape: rows ``X``, starting responsibilities ``z_init`` (n, G) or
    labels (n,), the noise column last with ``noise_vinv`` (mclust's ``Vinv``); a
    :class:`~gaussmix._models.prior.PriorControl` is resolved on (X, G, model) as mclust
    does. The result's ``z`` holds the final responsibilities.
    """
    from .._models.prior import Prior, PriorControl, resolve_prior
    from .._validation import check_int, check_real

    if not isinstance(model_name, str):
        raise TypeError(f"model_name must be a model name such as 'VVV', got "
                        f"{model_name!r}.")
    tol = check_real(tol, "tol", minimum=0.0, what="a finite number >= 0 (mclust's "
                     "default is 1e-5)")
    max_iter = check_int(max_iter, "max_iter", minimum=1, allow_none=True)
    noise_vinv = check_real(noise_vinv, "noise_vinv", minimum=0.0, inclusive=False,
                            allow_none=True, what="None or a finite density > 0 (1 / "
                            "the noise component's hypervolume)")
    if not (prior is None or prior is True or isinstance(prior, (Prior, PriorControl))):
        raise TypeError(f"prior must be None, True, a PriorControl or a Prior, got "
                        f"{type(prior).__name__}.")
    X = _as_2d(X)
    if X.shape[0] < 1:
        raise ValueError("X has no rows; mclust_em needs at least one row.")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values; remove or impute them.")
    z = _as_z(z_init, X.shape[0])
    noise = noise_vinv is not None
    G = z.shape[1] - noise
    if G < 1:
        raise ValueError("z_init needs at least one Gaussian component")
    model = get_model(model_name)
    if prior is not None:
        single = G == 1 and not noise
        prior = resolve_prior(prior, X, G, model.one_component_class(X.shape[1])
                              if single else model.name)
    source = ArraySource(X, None, X.shape[0])
    fit = fit_mclust(source, model.name, G, z, tol=tol, max_iter=max_iter, prior=prior,
                     noise_log_density=float(np.log(noise_vinv)) if noise else None,
                     backend=resolve_backend(backend))
    if fit.z is None:
        fit.z = responsibilities(source, fit.params)
    return fit


def single_component(X, name: str, prior=None) -> tuple[MclustParams, float]:
    """One Gaussian in closed form, as mclust fits G = 1 (``mvn``): the parameters and
    the log-likelihood of ``X``. ``name`` is a model or a class (X, XII, XXI, XXX)."""
    X = _as_2d(X)
    fit = mclust_em(X, _canonical(name), np.zeros(X.shape[0], dtype=np.intp), prior=prior)
    return fit.params, fit.loglik


def mclust_mstep(name: str, stats: SuffStats, prior=None,
                 previous: Params | None = None) -> MclustParams:
    """mclust's M-step (``mstep``): parameters from statistics, weights ``n_k / n``.

    ``prior`` is a resolved Prior (the MAP step); ``previous`` warm-starts the iterative
    M-steps (its ``state``, or one rebuilt from its covariances).
    """
    model = get_model(name)
    state = getattr(previous, "state", None)
    if previous is not None and state is None and model.state_from_covariances is not None:
        state = model.state_from_covariances(previous.covariances)
    mstep = MStep(model, prior=prior, strict=True, closed_form_single=False)
    params, state = mstep(stats, state)
    return MclustParams.of(params, model.name, state)
