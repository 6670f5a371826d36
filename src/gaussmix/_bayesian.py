"""``BayesianGaussianMixture``: scikit-learn's variational mixture on gaussmix's engine.

The variational update is an M-step in the one EM loop (:mod:`._engine.variational`),
the E-step the ordinary kernel fed with the variational parameters, so the estimator
reads every Source (arrays, files, Dask) through the same producers as
:class:`~gaussmix.GaussianMixture`, whose input handling it shares.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import numpy as np
from scipy.special import gammaln, logsumexp
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from ._engine.estep import most_probable, responsibilities, row_log_likelihoods
from ._engine.init import INIT_METHODS, given_stats, initial_stats
from ._engine.loop import Policy, run_em
from ._engine.params import FAMILIES
from ._engine.producers import row_pass, thread_pass
from ._engine.variational import (
    DIRICHLET_DISTRIBUTION,
    DIRICHLET_PROCESS,
    Posterior,
    Priors,
    VariationalStep,
    estep_params,
    mean_weights,
)
from ._estimator import GaussianMixture

_STATS_KIND = {"full": "full", "tied": "tied", "diag": "diag", "spherical": "diag"}


class BayesianGaussianMixture(DensityMixin, BaseEstimator):
    """Variational Bayesian estimation of a Gaussian mixture.

    A drop-in replacement for :class:`sklearn.mixture.BayesianGaussianMixture`: the same
    parameters, defaults, fitted attributes and methods, and from the same start the
    same numbers. Beyond it: ``fit(X, sample_weight=...)`` and every input
    :class:`~gaussmix.GaussianMixture` takes (a Source, a Dask array), in chunks.

    The weights get a Dirichlet-process (stick-breaking) or a Dirichlet-distribution
    prior, each component's mean and precision a Gaussian-Wishart prior; the fit
    maximises the evidence lower bound by coordinate ascent. Components the data do not
    need end with a negligible weight (``weights_``), so ``n_components`` is an upper
    bound on the number used.

    Parameters
    ----------
    n_components : int, default=1
        The number of components (an upper bound on those the data will use).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound between iterations.
    reg_covar : float, default=1e-6
        Added to the diagonal of each component's scatter.
    max_iter : int, default=100
    n_init : int, default=1
        Starts; the one with the largest lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}, \
            default='dirichlet_process'
    weight_concentration_prior : float, default=None
        The prior's concentration (1 / n_components if None); smaller values put the
        weight on fewer components.
    mean_precision_prior : float, default=None
        How strongly the means are held to ``mean_prior`` (1 if None).
    mean_prior : array-like of shape (n_features,), default=None
        The prior mean (the data's mean if None).
    degrees_of_freedom_prior : float, default=None
        The Wishart prior's degrees of freedom (n_features if None), > n_features - 1.
    covariance_prior : float or array-like, default=None
        The Wishart prior's covariance: (n_features, n_features) for 'full' and 'tied',
        (n_features,) for 'diag', a float for 'spherical' (the data's covariance, or
        variances, if None).
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
        Start the next ``fit`` from this one's solution.
    verbose : int, default=0
    verbose_interval : int, default=10
    chunk_size : int, default=None
        Rows per chunk of the E-step (gaussmix's; default sized to the cache).
    predictive : bool, default=False
        ``score_samples`` (and ``score``) return the log posterior predictive density,
        a mixture of multivariate Student-t (the parameters integrated out:
        scikit-learn #10148), instead of scikit-learn's plug-in of the variational
        expectations. 'full' and 'tied' only: there the Gaussian-Wishart posterior
        gives it in closed form.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ :
        The posterior's mean weights and the components' parameters, as scikit-learn's.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        The best start's evidence lower bound (scikit-learn's, its constants left out).
    lower_bounds_ : list of float
        Its lower bound at each iteration.
    weight_concentration_prior_, weight_concentration_ :
        The weights' prior and posterior concentration (a pair of arrays for the
        Dirichlet process).
    mean_precision_prior_, mean_precision_, mean_prior_ :
    degrees_of_freedom_prior_, degrees_of_freedom_, covariance_prior_ :
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions(set(FAMILIES))],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions(set(INIT_METHODS))],
        "weight_concentration_prior_type": [
            StrOptions({DIRICHLET_PROCESS, DIRICHLET_DISTRIBUTION})],
        "weight_concentration_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "mean_precision_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "mean_prior": [None, "array-like"],
        "degrees_of_freedom_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "covariance_prior": [None, "array-like", Interval(Real, 0.0, None, closed="neither")],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "predictive": ["boolean"],
    }

    def __init__(
        self,
        *,
        n_components=1,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=None,
        mean_precision_prior=None,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        chunk_size=None,
        predictive=False,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.chunk_size = chunk_size
        self.predictive = predictive

    # Input handling, sampling and progress messages as GaussianMixture's.
    _source = GaussianMixture._source
    _validate_X = GaussianMixture._validate_X
    _rows = GaussianMixture._rows
    score = GaussianMixture.score
    sample = GaussianMixture.sample
    _print_verbose_msg_init_beg = GaussianMixture._print_verbose_msg_init_beg
    _print_verbose_msg_iter_end = GaussianMixture._print_verbose_msg_iter_end
    _print_verbose_msg_init_end = GaussianMixture._print_verbose_msg_init_end

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the variational posterior, ``n_init`` times, keeping the start with
        the largest lower bound.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a Source
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights: a weight w counts the row w times (integer
            weights fit as repeated rows; zero weight is as if the row were absent).

        Returns
        -------
        self : BayesianGaussianMixture
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then the most probable component of each row of X."""
        source = self._fit(X, sample_weight)
        params = self._estep_params()
        return row_pass(source, lambda c: most_probable(c, params))

    @_fit_context(prefer_skip_nested_validation=True)
    def _fit(self, X, sample_weight):
        source = self._source(X, sample_weight)
        n_features, dtype = source.n_features, source.dtype
        w = getattr(source, "sample_weight", None)
        n_rows = source.n_rows if w is None else int(np.count_nonzero(w))
        if n_rows < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components "
                f"but got n_components = {self.n_components}, n_samples = {n_rows}"
                + ("" if w is None else " (rows with a positive weight)")
                + ". Use fewer components or more data."
            )
        family = self.covariance_type
        kind = _STATS_KIND[family]
        # The posterior depends on how much data there is: statistics in the row
        # weights as given, not as scaled for range (GaussianMixture needs only ratios).
        unscale = _unscale(source, sample_weight)
        priors = self._priors(source, n_features, unscale)
        produce = thread_pass(source, kind)

        def pass_fn(params):
            return unscale(produce(params))

        def on_iteration(n_iter, value, change, stats, params):
            if n_iter:
                self._print_verbose_msg_iter_end(n_iter, value, change)

        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        random_state = check_random_state(self.random_state)
        best = None
        for init in range(n_init):
            self._print_verbose_msg_init_beg(init)
            step = VariationalStep(priors, family, self.reg_covar)
            if do_init:
                stats = unscale(initial_stats(source, self.n_components, kind,
                                              self.init_params, random_state))
                start, _ = step(stats)  # the posterior of the starting responsibilities
                previous = -np.inf
            else:
                start, previous = self._estep_params(), self.lower_bound_
            result = run_em(pass_fn, step, start, _lower_bound_policy(self.tol, step, previous),
                            max_iter=self.max_iter, state=start, on_iteration=on_iteration)
            bound = step.lower_bounds[-1] if step.lower_bounds else -np.inf
            posterior = step.posterior if step.posterior is not None else self._posterior()
            self._print_verbose_msg_init_end(bound, result.converged)
            if best is None or bound > best[0] or best[0] == -np.inf:
                best = (bound, posterior, result, list(step.lower_bounds))

        bound, posterior, result, bounds = best
        if not result.converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. "
                "Try different init parameters, or increase max_iter, "
                "tol, or check for degenerate data.",
                ConvergenceWarning,
            )
        self._set_posterior(posterior, priors, dtype)
        self.converged_ = bool(result.converged)
        self.n_iter_ = int(result.n_iter)
        self.lower_bound_ = float(bound)
        self.lower_bounds_ = [float(b) for b in bounds]
        self.n_features_in_ = int(n_features)
        self._total_weight = float(result.stats.weight)  # as given (pass_fn unscales)
        return source

    def _priors(self, source, n_features, unscale) -> Priors:
        """The priors, defaults from the data's (weighted) moments, as scikit-learn's."""
        family = self.covariance_type
        need_moments = self.mean_prior is None or self.covariance_prior is None
        if need_moments:
            whole = unscale(given_stats(
                source, 1, "full" if family in ("full", "tied") else "diag",
                lambda start, chunk: np.ones((chunk.shape[0], 1), chunk.dtype)))
            total = float(whole.nk[0])
        if self.mean_prior is None:
            mean = whole.means[0]
        else:
            mean = check_array(self.mean_prior, dtype=[np.float64, np.float32],
                               ensure_2d=False).astype(np.float64)
            _check_shape(mean, (n_features,), "means")
        dof = self.degrees_of_freedom_prior
        if dof is None:
            dof = n_features
        elif not dof > n_features - 1.0:
            raise ValueError(
                "The parameter 'degrees_of_freedom_prior' should be greater than "
                f"{n_features - 1}, but got {dof:.3f}.")
        if self.covariance_prior is None:
            # Unbiased (ddof = 1) as np.cov and np.var(ddof=1): row weights count rows.
            scatter = whole.scatter[0] / (total - 1.0)
            covariance = {"full": np.atleast_2d(scatter), "tied": np.atleast_2d(scatter),
                          "diag": scatter, "spherical": float(np.mean(scatter))}[family]
        else:
            covariance = _checked_covariance_prior(self.covariance_prior, family, n_features)
        return Priors(
            weight_type=self.weight_concentration_prior_type,
            weight_concentration=(1.0 / self.n_components
                                  if self.weight_concentration_prior is None
                                  else float(self.weight_concentration_prior)),
            mean_precision=(1.0 if self.mean_precision_prior is None
                            else float(self.mean_precision_prior)),
            mean=np.asarray(mean, dtype=np.float64),
            degrees_of_freedom=float(dof),
            covariance=covariance,
        )

    def _set_posterior(self, post: Posterior, priors: Priors, dtype):
        self.weight_concentration_prior_ = priors.weight_concentration
        self.mean_precision_prior_ = priors.mean_precision
        self.mean_prior_ = priors.mean
        self.degrees_of_freedom_prior_ = priors.degrees_of_freedom
        self.covariance_prior_ = priors.covariance
        self.weight_concentration_ = post.weight_concentration
        self.mean_precision_ = post.mean_precision
        self.degrees_of_freedom_ = post.degrees_of_freedom
        self.weights_ = mean_weights(post, priors.weight_type)
        self.means_ = post.means.astype(dtype)
        self.covariances_ = np.asarray(post.covariances).astype(dtype)
        pc = np.asarray(post.precisions_cholesky)
        self.precisions_cholesky_ = pc.astype(dtype)
        if post.family == "full":
            precisions = pc @ np.swapaxes(pc, 1, 2)
        elif post.family == "tied":
            precisions = pc @ pc.T
        else:
            precisions = pc**2
        self.precisions_ = precisions.astype(dtype)

    @property
    def n_effective_components_(self) -> int:
        """Components that explain enough of the data to have a covariance of their
        own: posterior mean weight times the fit's total row weight >= n_features + 1
        (scikit-learn #7729). The others are mostly the prior's, holding a row or two
        at most: prune them with :meth:`to_gaussian_mixture`."""
        check_is_fitted(self)
        return int(np.count_nonzero(self._effective()))

    def _effective(self, min_weight=None):
        if min_weight is None:
            min_weight = (self.n_features_in_ + 1) / self._total_weight
        return self.weights_ >= min_weight

    def to_gaussian_mixture(self, min_weight=None):
        """The fitted mixture as a :class:`~gaussmix.GaussianMixture` of its effective
        components: their posterior mean weights (renormalised), means and
        covariances. The way to prune the components the data did not need, and to
        get what a GaussianMixture has (``bic``, model files, the command line, plots).

        Parameters
        ----------
        min_weight : float, optional
            Keep the components whose posterior mean weight is at least this; default
            ``(n_features + 1) / total row weight``, as ``n_effective_components_``.

        Returns
        -------
        GaussianMixture
        """
        from ._engine.params import params_from_covariances
        from ._estimator import set_fitted

        check_is_fitted(self)
        keep = self._effective(min_weight)
        if not keep.any():
            raise ValueError(f"No component has a weight of at least {min_weight}; the "
                             f"largest is {self.weights_.max():.3g}. Lower min_weight.")
        covariances = np.asarray(self.covariances_, dtype=np.float64)
        if self.covariance_type != "tied":
            covariances = covariances[keep]
        weights = self.weights_[keep] / self.weights_[keep].sum()
        params = params_from_covariances(weights, np.asarray(self.means_, np.float64)[keep],
                                         covariances, self.covariance_type)
        gm = GaussianMixture(int(keep.sum()), covariance_type=self.covariance_type,
                             tol=self.tol, reg_covar=self.reg_covar, max_iter=self.max_iter,
                             random_state=self.random_state, chunk_size=self.chunk_size)
        return set_fitted(gm, params, n_features=self.n_features_in_, converged=self.converged_,
                          n_iter=self.n_iter_, dtype=self.means_.dtype,
                          feature_names=getattr(self, "feature_names_in_", None))

    def _posterior(self) -> Posterior:
        return Posterior(self.weight_concentration_, self.mean_precision_,
                         np.asarray(self.means_, dtype=np.float64), self.degrees_of_freedom_,
                         np.asarray(self.covariances_, dtype=np.float64),
                         np.asarray(self.precisions_cholesky_, dtype=np.float64),
                         self.covariance_type)

    def _estep_params(self):
        return estep_params(self._posterior(), self.weight_concentration_prior_type)

    # -------------------------------------------------------------- prediction
    def score_samples(self, X):
        """Log of each row's density, shape (n_samples,): scikit-learn's (the log-sum
        over components of the expected log weight plus the expected log-density), or
        with ``predictive=True`` the log posterior predictive density."""
        rows = self._rows(X)
        if self.predictive:
            return row_pass(rows, self._student_t().log_density)
        params = self._estep_params()
        return row_pass(rows, lambda c: row_log_likelihoods(c, params))

    def _student_t(self):
        if self.covariance_type not in ("full", "tied"):
            raise ValueError(
                "predictive=True needs covariance_type 'full' or 'tied' (a Wishart "
                f"posterior), not {self.covariance_type!r}; use predictive=False.")
        return _StudentMixture(self)

    def predict(self, X):
        """The most probable component of each row, shape (n_samples,)."""
        rows = self._rows(X)
        params = self._estep_params()
        return row_pass(rows, lambda c: most_probable(c, params))

    def predict_proba(self, X):
        """Each component's responsibility for each row, shape (n_samples, K)."""
        rows = self._rows(X)
        params = self._estep_params()
        return row_pass(rows, lambda c: responsibilities(c, params))


class _StudentMixture:
    """The posterior predictive of a fitted 'full' or 'tied' model: component k is a
    Student-t with nu_k + 1 - D degrees of freedom, location m_k and precision
    (nu_k + 1 - D) beta_k / (1 + beta_k) W_k (Bishop, PRML 10.81), weighted by the
    posterior mean weight."""

    def __init__(self, bgm):
        d = bgm.means_.shape[1]
        k = bgm.means_.shape[0]
        nu = np.broadcast_to(np.asarray(bgm.degrees_of_freedom_, dtype=np.float64), (k,))
        beta = np.asarray(bgm.mean_precision_, dtype=np.float64)
        self.df = nu + 1.0 - d
        pc = np.asarray(bgm.precisions_cholesky_, dtype=np.float64)  # of nu_k W_k
        pc = np.broadcast_to(pc, (k, d, d)) if bgm.covariance_type == "tied" else pc
        scale = self.df * beta / (1.0 + beta) / nu
        self.factors = pc * np.sqrt(scale)[:, None, None]
        self.means = np.asarray(bgm.means_, dtype=np.float64)
        log_det = np.log(np.diagonal(self.factors, axis1=1, axis2=2)).sum(axis=1)
        self.const = (np.log(bgm.weights_) + gammaln(0.5 * (self.df + d))
                      - gammaln(0.5 * self.df) - 0.5 * d * np.log(self.df * np.pi) + log_det)
        self.half_power = 0.5 * (self.df + d)

    def log_density(self, X):
        X = np.asarray(X, dtype=np.float64)
        out = np.empty((X.shape[0], len(self.means)))
        for k, (m, u) in enumerate(zip(self.means, self.factors)):
            z = (X - m) @ u
            out[:, k] = self.const[k] - self.half_power[k] * np.log1p(
                np.einsum("ij,ij->i", z, z) / self.df[k])
        return logsumexp(out, axis=1)


def _unscale(source, sample_weight):
    """The map from the source's statistics to those of the row weights as given:
    sources scale the weights by a power of two (exactly) to keep them in range. A Dask
    source knows its factor once prepared (before its first statistics come back)."""
    given = 1.0
    scaled = getattr(source, "sample_weight", None)
    if scaled is not None and sample_weight is not None:
        ratio = float(np.sum(scaled, dtype=np.float64)) / float(
            np.sum(np.asarray(sample_weight, dtype=np.float64)))
        given = math.ldexp(1.0, round(math.log2(ratio)))

    def unscale(stats):
        scale = getattr(source, "weight_scale", given)
        return stats if scale == 1.0 else stats.scaled(1.0 / scale)

    return unscale


def _lower_bound_policy(tol, step: VariationalStep, previous=-np.inf) -> Policy:
    """Stop when the lower bound (appended by each update to ``step.lower_bounds``)
    changes by less than ``tol`` (scikit-learn's rule); no re-seeding: the variational
    update keeps an unused component with its prior."""
    trace = {"prev": previous}

    def converged(stats, reseeded):
        value = step.lower_bounds[-1]
        change = value - trace["prev"]
        trace["prev"] = value
        return bool(math.isfinite(change) and abs(change) < tol), value, change

    return Policy(converged, reseed=False, last=lambda: trace["prev"])


def _check_shape(value, shape, name):
    if value.shape != shape:
        raise ValueError(f"The parameter '{name}' should have the shape of {shape}, "
                         f"but got {value.shape}")


def _checked_covariance_prior(value, family, n_features):
    if family == "spherical":
        return float(value)
    value = check_array(value, dtype=[np.float64, np.float32], ensure_2d=False)
    value = value.astype(np.float64)
    if family in ("full", "tied"):
        _check_shape(value, (n_features, n_features), f"{family} covariance_prior")
        if not np.allclose(value, value.T) or np.any(np.linalg.eigvalsh(value) <= 0.0):
            raise ValueError(f"'{family} covariance_prior' should be symmetric, "
                             "positive-definite")
    else:
        _check_shape(value, (n_features,), f"{family} covariance_prior")
        if np.any(value <= 0.0):
            raise ValueError(f"'{family} covariance_prior' should be positive")
    return value
