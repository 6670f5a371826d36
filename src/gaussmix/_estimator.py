"""``GaussianMixture``: scikit-learn's estimator on gaussmix's engine.

Same parameters, attributes, methods and numbers as ``sklearn.mixture.GaussianMixture``,
plus ``sample_weight`` in ``fit``, mclust's covariance models, bounded-memory chunked
passes and numerically stable statistics.
"""

from __future__ import annotations

import itertools
import math
import sys
import warnings
from numbers import Integral, Real
from time import time

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import InvalidParameterError, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._engine.dask_source import DaskSource, is_dask
from ._engine.estep import most_probable, responsibilities, row_log_likelihoods
from ._engine.init import INIT_METHODS, initial_stats
from ._engine.missing import check_rows_observed
from ._engine.missing import impute as impute_missing
from ._engine.loop import EmptyComponentWarning, run_em, sklearn_policy, stepwise_policy
from ._engine.mstep import MStep
from ._engine.namespaces import (dispatch_enabled, host_if_device, is_device_array,
                                 namespace_of, to_numpy)
from ._engine.params import Params, make_params, params_from_precisions
from ._engine.producers import row_pass, thread_pass
from ._engine.sources import ArraySource, Source, default_chunk_rows
from ._engine.stepwise import StepwisePass, StepwiseState
from ._models.registry import ACCEPTED_NAMES, get_model
from ._names import case_hint, covariance_names
from ._validation import (
    check_means,
    check_precisions,
    check_sample_weight,
    check_weights,
    warn_if_reg_covar_swamps,
    with_advice,
)

class _CovarianceNames(StrOptions):
    """scikit-learn's check of a name, the registry's live set, listed in order."""

    def __init__(self):
        super().__init__(ACCEPTED_NAMES)

    def __str__(self):
        return f"a str among {{{', '.join(map(repr, covariance_names()))}}}"


_FLOAT32_HINT = (
    " The numerical accuracy can also be improved by passing float64"
    " data instead of float32."
)


def _as_params(estimator) -> Params:
    """Engine parameters from a fitted estimator's public attributes."""
    # to_numpy: attributes fitted on an array-API device live there
    return make_params(
        to_numpy(estimator.weights_),
        to_numpy(estimator.means_).astype(np.float64),
        to_numpy(estimator.covariances_).astype(np.float64),
        to_numpy(estimator.precisions_cholesky_).astype(np.float64),
        get_model(estimator.covariance_type).family,
    )


# ------------------------------------------------- array-API inputs (the device face)
def _on_device(X) -> bool:
    """Whether X is fitted where it lives: an array-API array (PyTorch, CuPy, ...)
    under scikit-learn's ``array_api_dispatch``."""
    return dispatch_enabled() and is_device_array(X)


def _device_source(X, sample_weight=None, chunk_rows=None):
    from ._engine.device import DeviceSource

    return DeviceSource(X, sample_weight, chunk_rows=chunk_rows)


def _per_row(rows, params, what):
    """Per-row results: on the device for a DeviceSource, else chunk by chunk."""
    on_device = getattr(rows, "per_row", None)
    if on_device is not None:
        return on_device(params, what)
    if what == "labels":
        return row_pass(rows, lambda c: most_probable(c, params))
    if what == "score":
        return row_pass(rows, lambda c: row_log_likelihoods(c, params))
    return row_pass(rows, lambda c: responsibilities(c, params))


def _move_fitted(gm, xp, device):
    """The fitted arrays as arrays of ``xp`` on ``device`` (scikit-learn's rule for
    array-API inputs)."""
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_",
                 "precisions_"):
        setattr(gm, name, xp.asarray(getattr(gm, name), device=device))


class GaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture fitted by expectation maximization.

    A drop-in replacement for :class:`sklearn.mixture.GaussianMixture`: the same
    parameters, attributes and methods, and from the same start the same numbers.
    Beyond it: ``fit(X, sample_weight=...)``, mclust's fourteen covariance models
    (``covariance_type="VEV"`` etc.), statistics that stay exact for data far from the
    origin, chunked passes with bounded memory, a ``lower_bound_`` that is the
    log-likelihood of the returned parameters, and :meth:`partial_fit` (stepwise EM
    over batches, or over a Source read once).

    Parameters
    ----------
    n_components : int, default=1
        The number of mixture components.
    covariance_type : str, default='full'
        scikit-learn's 'full', 'tied', 'diag', 'spherical' or one of mclust's model
        names ('EII', 'VII', 'EEI', ..., 'VVV'); 'full' = 'VVV', 'tied' = 'EEE',
        'diag' = 'VVI', 'spherical' = 'VII'.
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood per sample.
    reg_covar : float, default=1e-6
        Non-negative regularization added to the diagonal of covariance.
    max_iter : int, default=100
        The number of EM iterations to perform.
    n_init : int, default=1
        The number of initializations to perform; the best result is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        The method used to initialize the weights, the means and the precisions.
        Sample weights are honoured by every method.
    weights_init : array-like of shape (n_components,), default=None
        The user-provided initial weights.
    means_init : array-like of shape (n_components, n_features), default=None
        The user-provided initial means.
    precisions_init : array-like, default=None
        The user-provided initial precisions, shaped as ``precisions_``.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialization and :meth:`sample`.
    warm_start : bool, default=False
        If True, each ``fit`` continues from the last solution (``n_init`` is ignored).
    verbose : int, default=0
        1 prints each initialization and iteration; 2 adds timings and the change.
    verbose_interval : int, default=10
        Number of iterations between prints.
    chunk_size : int or None, default=None
        Rows per chunk of the E-step. Memory beyond X is O(chunk_size * K * D). None
        picks a size from K and D. Results do not depend on it beyond rounding.
    step_exponent : float, default=0.7
        alpha of :meth:`partial_fit`'s step sizes eta_t = (t + t0)^(-alpha), in
        (0.5, 1]. Smaller forgets the early batches (and the start) faster; 1 weighs
        all batches alike. The default was measured: one pass in batches of 10,000
        over 2,000,000 rows (16-D, 16 components, full) ends 0.001 nats per row below
        full EM from the same start, the best of 0.55 to 1 (1: 0.008); see
        benchmarks/RESULTS.md.
    step_offset : float, default=2.0
        t0 of :meth:`partial_fit`'s step sizes, >= 0: damps the first steps after the
        first update (t0 = 0 makes the second update replace the first).
    nan_policy : {'raise', 'marginalize'}, default='raise'
        What a NaN in X means. 'raise' refuses it, as scikit-learn does.
        'marginalize' takes NaN as a coordinate missing at random: each row is scored
        by the marginal density of its observed coordinates, and EM adds the
        conditional expectations of the missing ones (the maximum-likelihood fit of
        the observed data). ``predict``, ``predict_proba``, ``score_samples``,
        ``score``, ``bic`` and ``aic`` then accept rows with NaN too; a row with every
        coordinate missing is an error. The start (k-means and the others) sees each
        gap filled by its column's observed mean. See :meth:`impute`.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        (K,) spherical, (D, D) tied, (K, D) diag, (K, D, D) full.
    precisions_ : ndarray
        Inverses of the covariances, same shapes.
    precisions_cholesky_ : ndarray
        Upper-triangular factors U of the precisions (P = U U^T), same shapes.
    converged_ : bool
        False after :meth:`partial_fit` (a stream has no convergence test).
    n_iter_ : int
        EM iterations of the best run; after :meth:`partial_fit`, the updates so far.
    lower_bound_ : float
        Mean log-likelihood of the training data under the returned parameters; after
        :meth:`partial_fit`, that of the last batch under the parameters before its
        update.
    lower_bounds_ : list of float
        Mean log-likelihood after each iteration of the best run (the last entry equals
        ``lower_bound_``); after :meth:`partial_fit`, that of each batch of the call, as
        ``lower_bound_``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when X has feature names that are all strings.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import GaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> gm.means_
    array([[10.,  2.],
           [ 1.,  2.]])
    >>> gm.predict([[0, 0], [12, 3]])
    array([1, 0])
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        # the registry's live set of names: a model registered later is accepted too
        "covariance_type": [_CovarianceNames()],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions(set(INIT_METHODS))],
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "step_exponent": [Interval(Real, 0.5, 1.0, closed="right")],
        "step_offset": [Interval(Real, 0.0, None, closed="left")],
        "nan_policy": [StrOptions({"raise", "marginalize"})],
    }

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        chunk_size=None,
        step_exponent=0.7,
        step_offset=2.0,
        nan_policy="raise",
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.chunk_size = chunk_size
        self.step_exponent = step_exponent
        self.step_offset = step_offset
        self.nan_policy = nan_policy

    def _validate_params(self):
        try:
            super()._validate_params()
        except InvalidParameterError as error:  # scikit-learn's words, and a hint
            hint = case_hint(self.covariance_type, covariance_names())
            if hint and "'covariance_type'" in str(error):
                raise InvalidParameterError(f"{error}{hint}") from None
            raise

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, sample_weight=None):
        """Estimate model parameters with the EM algorithm.

        Fits ``n_init`` times and keeps the parameters with the largest
        log-likelihood. Each run alternates E- and M-steps for at most ``max_iter``
        iterations, until the mean log-likelihood changes by less than ``tol``;
        otherwise a :class:`~sklearn.exceptions.ConvergenceWarning` is raised.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a Source
            The rows; a :class:`gaussmix.Source` is read through its chunks and a
            sample only (its chunks carry the row weights). Under scikit-learn's
            ``array_api_dispatch``, an array of another array-API library (PyTorch,
            CuPy) is fitted on its device and the fitted arrays live there
            (:class:`gaussmix.DeviceSource`).
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights: a weight w counts the row w times (integer
            weights fit as repeated rows; zero weight is as if the row were absent).
            Used by the initialization too.

        Returns
        -------
        self : GaussianMixture
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then predict the labels of X; equals ``fit(X).predict(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a Source
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        source = self._fit(X, sample_weight)
        return _per_row(source, _as_params(self), "labels")

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the model with one batch of rows: stepwise (online) EM.

        Each batch's E-step runs under the current parameters; running statistics move
        towards the batch's (per unit of row weight) by eta_t = (t + t0)^(-alpha)
        (``step_offset``, ``step_exponent``), and the M-step re-estimates the
        parameters from them. For streams read once: each row is read one time.

        The first call (on an unfitted estimator) sets the shapes and starts exactly as
        :meth:`fit` would on that batch (``init_params``, ``weights_init``,
        ``means_init``, ``precisions_init``, ``random_state``), then updates with
        eta = 1: one EM iteration, the parameters of ``fit`` with ``max_iter=1``. After
        :meth:`fit`, the next call continues from the statistics of the fitted
        parameters as if they were a first update (its step is eta_1). On an estimator
        fitted otherwise (``select``, a model file) there are no statistics to blend
        with: the next update takes eta = 1 and the schedule starts again. Later calls
        need the same features (and feature names).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a Source
            One batch; a :class:`gaussmix.Source` is a stream whose chunks are the
            batches, in order (one pass, e.g. over a file larger than memory).
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights, as in :meth:`fit`. A batch's statistics are
            taken per unit of its weight, so a common scale of the weights changes
            nothing and the step size alone sets how much a batch counts.

        Returns
        -------
        self : GaussianMixture
            ``n_iter_`` counts the updates so far, ``lower_bound_`` is the mean
            log-likelihood of the last batch under the parameters before its update,
            ``converged_`` is False.
        """
        first = not hasattr(self, "means_")
        # Stepwise EM runs on the host: array-API batches are copied there.
        X, sample_weight = host_if_device(X), host_if_device(sample_weight)
        if isinstance(X, Source):
            if sample_weight is not None:
                raise ValueError(
                    "sample_weight cannot be given with a Source: its chunks carry the "
                    "row weights."
                )
            if first:
                _take_source_features(self, X)
            else:
                _check_source_features(self, X)
            n_features, dtype, chunks = X.n_features, np.dtype(X.dtype), X.chunks()
        else:
            X = self._validate_X(X, reset=first, dtype=[np.float64, np.float32],
                                 ensure_min_samples=2 if first else 1)
            n_features, dtype = X.shape[1], X.dtype
            chunks = [(X, check_sample_weight(sample_weight, X.shape[0], dtype))]
        # Each batch becomes a Source of its own: its E-step (and the first batch's
        # start) runs in fit's chunks, so the first call matches fit's numbers.
        rows = self.chunk_size or default_chunk_rows(self.n_components, n_features)
        batches = (ArraySource(x, w, rows) for x, w in chunks)
        model = get_model(self.covariance_type)
        hint = _FLOAT32_HINT if dtype == np.float32 else ""
        mstep = MStep(model, reg_covar=self.reg_covar, error_hint=hint)
        if first:
            batch = next(batches, None)
            w = None if batch is None else batch.sample_weight
            n_rows = 0 if batch is None else (
                batch.n_rows if w is None else int(np.count_nonzero(w)))
            if n_rows < self.n_components:
                raise ValueError(
                    "Expected n_samples >= n_components in the first batch of "
                    f"partial_fit but got n_components = {self.n_components}, "
                    f"n_samples = {n_rows}" + ("" if w is None else " (rows with a "
                    "positive weight)") + ". The first batch initialises the model: "
                    "pass a larger one, or use fewer components."
                )
            start = self._initial_params(
                batch, model, mstep, check_random_state(self.random_state),
                *self._checked_init(n_features, dtype))
            batches, state = itertools.chain([batch], batches), StepwiseState()
        else:
            start = _as_params(self)
            state = getattr(self, "_stepwise", None) or StepwiseState()

        def on_reseed(component, n_update):
            warnings.warn(
                f"Component {component} became empty at update {n_update} of this "
                "partial_fit call; it was re-seeded at the sample the mixture explained "
                "worst. Consider fewer components.",
                EmptyComponentWarning,
                stacklevel=5,  # on_reseed < run_em < partial_fit < fit context < caller
            )

        stream = StepwisePass(batches, model.stats_kind, state, self.step_exponent,
                              self.step_offset)
        result = run_em(stream, mstep, start, stepwise_policy(), max_iter=sys.maxsize,
                        state=start.covariances, on_reseed=on_reseed)
        if result.n_iter == 0:  # a stream without a row of positive weight
            return self
        logliks = stream.batch_log_likelihoods
        set_fitted(self, result.params, dtype=dtype, n_features=n_features,
                   converged=False, n_iter=stream.state.n_updates,
                   lower_bound=logliks[-1], lower_bounds=logliks,
                   feature_names=getattr(self, "feature_names_in_", None),
                   stepwise=stream.state)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def _fit(self, X, sample_weight):
        source = self._source(X, sample_weight)
        n_features, dtype = source.n_features, source.dtype
        w = getattr(source, "sample_weight", None)
        n_rows = source.n_rows if w is None else int(np.count_nonzero(w))
        if n_rows < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components "
                f"but got n_components = {self.n_components}, "
                f"n_samples = {n_rows}"
                + ("" if w is None else " (rows with a positive weight)")
                + ". Use fewer components or more data."
            )
        model = get_model(self.covariance_type)
        weights_init, means_init, precisions_init = self._checked_init(n_features, dtype)
        hint = _FLOAT32_HINT if dtype == np.float32 else ""
        pass_fn = thread_pass(source, model.stats_kind)
        mstep = MStep(model, reg_covar=self.reg_covar, error_hint=hint)

        def on_reseed(component, n_iter):
            warnings.warn(
                f"Component {component} became empty at iteration {n_iter}; it was "
                "re-seeded at the sample the mixture explained worst. Consider fewer "
                "components.",
                EmptyComponentWarning,
                stacklevel=6,  # on_reseed < run_em < _fit < fit context < fit < caller
            )

        def on_iteration(n_iter, value, change, stats, params):
            if n_iter:
                self._print_verbose_msg_iter_end(n_iter, value, change)

        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        random_state = check_random_state(self.random_state)
        best = None
        for init in range(n_init):
            self._print_verbose_msg_init_beg(init)
            if do_init:
                start = self._initial_params(
                    source, model, mstep, random_state, weights_init, means_init,
                    precisions_init,
                )
                previous_ll = -np.inf
            else:
                start = _as_params(self)
                previous_ll = self._previous_log_likelihood
            result = run_em(
                pass_fn, mstep, start, sklearn_policy(self.tol, previous_ll),
                max_iter=self.max_iter, state=start.covariances,
                on_iteration=on_iteration, on_reseed=on_reseed,
            )
            self._print_verbose_msg_init_end(result.log_likelihood, result.converged)
            if best is None or result.log_likelihood > best.log_likelihood:
                best = result

        if not best.converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. "
                "Try different init parameters, or increase max_iter, "
                "tol, or check for degenerate data.",
                ConvergenceWarning,
            )
        warn_if_reg_covar_swamps(best.stats, self.reg_covar,
                                 getattr(self, "feature_names_in_", None))
        weight = best.stats.weight
        set_fitted(self, best.params, dtype=dtype, n_features=n_features,
                   converged=best.converged, n_iter=best.n_iter,
                   lower_bound=best.log_likelihood,
                   lower_bounds=[ll / weight for ll in best.log_likelihoods[1:]],
                   previous_log_likelihood=best.previous_log_likelihood,
                   feature_names=getattr(self, "feature_names_in_", None),
                   # partial_fit continues from the statistics of the returned
                   # parameters, as from a first update (not by replacing them)
                   stepwise=StepwiseState(best.stats.scaled(1.0 / weight), 1))
        if getattr(source, "from_array", False):  # array-API input: attributes go there
            _move_fitted(self, source.xp, source.device)
        return source

    def _source(self, X, sample_weight):
        """The fit's rows: a Source as given, or validated X and weights as one."""
        if is_dask(X):  # fitted on the workers, the data persisted for the fit
            X, sample_weight = DaskSource(X, sample_weight,
                                          allow_missing=_marginalizes(self)), None
        elif _on_device(X):  # fitted on its device
            X = _device_source(X, sample_weight, self.chunk_size)
            X.from_array, sample_weight = True, None
        if isinstance(X, Source):
            if sample_weight is not None:
                raise ValueError(
                    "sample_weight cannot be given with a Source: its chunks carry the "
                    "row weights."
                )
            _take_source_features(self, X)
            return X
        X = self._validate_X(X, reset=True)
        n_samples, n_features = X.shape
        sample_weight = check_sample_weight(sample_weight, n_samples, X.dtype)
        chunk_rows = self.chunk_size or default_chunk_rows(self.n_components, n_features)
        return ArraySource(X, sample_weight, chunk_rows)

    def _validate_X(self, X, reset, allow_nan=None, **check):
        """X checked as scikit-learn does (``check``: more of ``validate_data``'s
        arguments); NaN allowed with ``nan_policy='marginalize'`` (or ``allow_nan``)."""
        allow_nan = _marginalizes(self) if allow_nan is None else allow_nan
        finite = "allow-nan" if allow_nan else True
        if reset and not check:
            check = dict(dtype=[np.float64, np.float32], ensure_min_samples=2)
        try:
            X = validate_data(self, X, reset=reset, ensure_all_finite=finite, **check)
        except ValueError as error:
            if not allow_nan and "NaN" in str(error) and hasattr(self, "nan_policy"):
                raise ValueError(f"{error} Or pass nan_policy='marginalize' to treat "
                                 "NaN as missing coordinates.") from None
            raise with_advice(error) from None
        if allow_nan:
            check_rows_observed(X, columns=reset)
        return X

    def _checked_init(self, n_features, dtype):
        weights = means = precisions = None
        family = get_model(self.covariance_type).family
        # Array-valued arguments may be arrays of the data's namespace (on its device).
        if self.weights_init is not None:
            weights = check_weights(host_if_device(self.weights_init), self.n_components,
                                    dtype)
        if self.means_init is not None:
            means = check_means(host_if_device(self.means_init), self.n_components,
                                n_features, dtype)
        if self.precisions_init is not None:
            precisions = check_precisions(
                host_if_device(self.precisions_init), family, self.n_components,
                n_features, dtype
            )
        return weights, means, precisions

    def _initial_params(self, source, model, mstep, random_state, weights_init,
                        means_init, precisions_init) -> Params:
        given = (weights_init, means_init, precisions_init)
        if any(v is None for v in given):
            stats = initial_stats(
                source, self.n_components, model.stats_kind, self.init_params, random_state
            )
            params = mstep(stats)[0]
        else:
            params = None
        weights = params.weights if weights_init is None else weights_init
        means = params.means if means_init is None else means_init
        if precisions_init is not None:
            return params_from_precisions(weights, means, precisions_init, model.family)
        return make_params(weights, means, params.covariances,
                           params.precisions_cholesky, params.family)

    # -------------------------------------------------------------- prediction
    def _rows(self, X):
        """Rows to predict on as a Source: one as given (its columns checked against the
        fit's), or validated X in chunks. predict and score_samples return one value per
        row: chunking keeps their (n, K) temporaries bounded, as in fit."""
        check_is_fitted(self)
        if is_dask(X):  # per-row results come back as lazy Dask arrays
            X = DaskSource(X, persist=False, allow_missing=_marginalizes(self))
        elif _on_device(X):  # per-row results stay on X's device
            X = _device_source(X, chunk_rows=self.chunk_size)
        if isinstance(X, Source):
            _check_source_features(self, X)
            return X
        X = self._validate_X(X, reset=False)
        rows = self.chunk_size or default_chunk_rows(self.n_components, X.shape[1])
        return ArraySource(X, None, rows)

    def score_samples(self, X):
        """Log-likelihood of each sample, shape (n_samples,).

        X : array-like of shape (n_samples, n_features), or a Source (read chunk by
        chunk; so are predict, predict_proba, score, bic and aic).
        """
        return _per_row(self._rows(X), _as_params(self), "score")

    def score(self, X, y=None):
        """Mean log-likelihood per sample of X (what ``GridSearchCV`` maximizes)."""
        return float(np.mean(to_numpy(self.score_samples(X))))

    def predict(self, X):
        """The most probable component of each sample, shape (n_samples,)."""
        return _per_row(self._rows(X), _as_params(self), "labels")

    def predict_proba(self, X):
        """Posterior probability of each component for each sample, (n_samples, K)."""
        return _per_row(self._rows(X), _as_params(self), "proba")

    def impute(self, X, *, draw=False, random_state=None):
        """Fill the missing entries (NaN) of X from the fitted mixture.

        Each NaN becomes its conditional mean given the row's observed coordinates,
        ``sum_k p(k | x_o) E[x_m | x_o, k]``; with ``draw=True``, a draw from the
        conditional distribution instead (a component by ``p(k | x_o)``, then the
        Gaussian conditional). Observed entries are returned unchanged; X is not
        modified. Works whatever ``nan_policy`` the model was fitted with.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        draw : bool, default=False
        random_state : int, RandomState instance or None, default=None
            Seeds the draws.

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features), float64
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False, allow_nan=True)
        return impute_missing(X, _as_params(self), draw=draw,
                              random_state=check_random_state(random_state))

    def sample(self, n_samples=1):
        """Draw samples from the fitted mixture.

        Parameters
        ----------
        n_samples : int, default=1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            The component each sample was drawn from.
        """
        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError(
                "Invalid value for 'n_samples': %d . The sampling requires at "
                "least one sample." % (self.n_components)
            )
        # drawn on the host (NumPy's generator, as scikit-learn's), then moved to
        # where the fitted arrays live
        weights, means, covariances = map(to_numpy, (self.weights_, self.means_,
                                                     self.covariances_))
        _, n_features = means.shape
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, weights)
        family = get_model(self.covariance_type).family
        parts = []
        for k, (mean, count) in enumerate(zip(means, counts)):
            if family == "full":
                parts.append(rng.multivariate_normal(mean, covariances[k], int(count)))
            elif family == "tied":
                parts.append(rng.multivariate_normal(mean, covariances, int(count)))
            else:
                parts.append(
                    mean + rng.standard_normal(size=(count, n_features))
                    * np.sqrt(covariances[k])
                )
        X = np.vstack(parts)
        y = np.concatenate([np.full(int(c), k, dtype=np.int64) for k, c in enumerate(counts)])
        if is_device_array(self.means_):
            xp, where = namespace_of(self.means_)
            X, y = xp.asarray(X, device=where), xp.asarray(y, device=where)
        return X, y

    # ------------------------------------------------------ information criteria
    def _n_parameters(self):
        """Number of free parameters of the model."""
        n_features = self.means_.shape[1]
        model = get_model(self.covariance_type)
        cov_params = model.n_cov_parameters(self.n_components, n_features)
        return int(cov_params + n_features * self.n_components + self.n_components - 1)

    def bic(self, X):
        """Bayesian information criterion on X (lower is better)."""
        n = _n_rows(X)
        return -2 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X):
        """Akaike information criterion on X (lower is better)."""
        return -2 * self.score(X) * _n_rows(X) + 2 * self._n_parameters()

    # ------------------------------------------------------------------ verbose
    def _print_verbose_msg_init_beg(self, n_init):
        if self.verbose >= 1:
            print("Initialization %d" % n_init)
        if self.verbose >= 2:
            self._init_prev_time = time()
            self._iter_prev_time = self._init_prev_time

    def _print_verbose_msg_iter_end(self, n_iter, log_likelihood, diff_ll):
        if n_iter % self.verbose_interval == 0:
            if self.verbose == 1:
                print("  Iteration %d" % n_iter)
            elif self.verbose >= 2:
                cur_time = time()
                print(
                    "  Iteration %d\t time lapse %.5fs\t ll change %.5f"
                    % (n_iter, cur_time - self._iter_prev_time, diff_ll)
                )
                self._iter_prev_time = cur_time

    def _print_verbose_msg_init_end(self, lb, init_has_converged):
        converged_msg = "converged" if init_has_converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {converged_msg}.")
        elif self.verbose >= 2:
            t = time() - self._init_prev_time
            print(
                f"Initialization {converged_msg}. time lapse {t:.5f}s\t lower bound"
                f" {lb:.5f}."
            )


def _marginalizes(estimator) -> bool:
    """Whether NaN means a missing coordinate (``nan_policy='marginalize'``); the
    Bayesian mixture, which shares these methods, has no such parameter."""
    return getattr(estimator, "nan_policy", "raise") == "marginalize"


def _n_rows(X) -> int:
    if isinstance(X, Source):
        return X.n_rows
    return X.shape[0] if is_device_array(X) else len(X)


def _take_source_features(gm, source) -> None:
    """``feature_names_in_`` from a Source's column names, as from a DataFrame's."""
    if hasattr(gm, "feature_names_in_"):
        del gm.feature_names_in_
    names = getattr(source, "feature_names", None)
    if names is not None and all(isinstance(n, str) for n in names):
        gm.feature_names_in_ = np.asarray(names, dtype=object)


def _check_source_features(gm, source) -> None:
    """A Source's columns must be the fit's: as many, and the same names if both have
    names (scikit-learn's rule for DataFrames)."""
    if source.n_features != gm.n_features_in_:
        raise ValueError(
            f"X has {source.n_features} features, but {type(gm).__name__} is expecting "
            f"{gm.n_features_in_} features as input."
        )
    fitted = getattr(gm, "feature_names_in_", None)
    names = getattr(source, "feature_names", None)
    if fitted is not None and names is not None and list(fitted) != list(names):
        raise ValueError(
            f"The source's columns {list(names)} are not the ones the model was fitted "
            f"on, {list(fitted)}; select those columns, in that order."
        )


def set_fitted(gm, params: Params, *, n_features, converged=False, n_iter=0,
               lower_bound=-np.inf, lower_bounds=(), previous_log_likelihood=-np.inf,
               feature_names=None, dtype=np.float64, precisions=None, stepwise=None):
    """Give ``gm`` (a constructed :class:`GaussianMixture`) the fitted state of
    ``params``: the one place a fitted estimator is assembled (fit, select's best model,
    ``Mixture.to_estimator``, model files).

    Parameters
    ----------
    gm : GaussianMixture
    params : Params
    n_features : int
    converged, n_iter, lower_bound, lower_bounds :
        The fit's record (``lower_bound_`` and ``lower_bounds_`` are mean
        log-likelihoods per row).
    previous_log_likelihood : float
        The value a warm start compares its first change against.
    feature_names : ndarray of str, optional
    dtype : numpy dtype
        Of the fitted arrays (the training data's).
    precisions : ndarray, optional
        ``precisions_`` as stored; default computed from ``params``.
    stepwise : StepwiseState, optional
        :meth:`GaussianMixture.partial_fit`'s running statistics for these parameters
        (None: any other fit, and the next ``partial_fit`` starts a new stream from
        the parameters).

    Returns
    -------
    GaussianMixture
        ``gm``.
    """
    gm.weights_ = params.weights.astype(dtype)
    gm.means_ = params.means.astype(dtype)
    gm.covariances_ = params.covariances.astype(dtype)
    gm.precisions_cholesky_ = params.precisions_cholesky.astype(dtype)
    gm.precisions_ = (params.precisions() if precisions is None else precisions).astype(dtype)
    gm.converged_ = bool(converged)
    gm.n_iter_ = int(n_iter)
    gm.lower_bound_ = float(lower_bound)
    gm.lower_bounds_ = [float(v) for v in lower_bounds]
    gm._previous_log_likelihood = float(previous_log_likelihood)
    gm._stepwise = stepwise
    gm.n_features_in_ = int(n_features)
    if feature_names is not None:
        gm.feature_names_in_ = np.asarray(feature_names, dtype=object)
    return gm
