"""The object model: ``Gauss`` components and a ``Mixture`` that is a list of them.

This is the API people first learn EM with (a class per component with ``mu``, ``cov``,
``pi`` and responsibilities ``r``; a mixture that alternates ``expectation`` and
``maximization``), run on the same engine as :class:`gaussmix.GaussianMixture`:
``fit`` is the engine's one EM loop with the fixed-steps policy, over any Source: the
log-space E-step kernel, statistics accumulated about the current means, and the M-step
of the ``"full"`` (VVV) covariance model with ``reg_covar`` on the diagonal. One EM step
of a ``Mixture`` is therefore one iteration of
``GaussianMixture(covariance_type="full")`` from the same start.
"""

from __future__ import annotations

import warnings
from collections.abc import MutableSequence
from dataclasses import replace

import numpy as np
from scipy import linalg

from ._engine.estep import (estep_chunk, log_gaussian_prob, log_resp_and_norm,
                             most_probable, responsibilities, row_log_likelihoods)
from ._engine.missing import check_rows_observed, missing_rows
from ._validation import check_int, check_random_state, check_real

from ._engine.loop import EmptyComponentWarning, fixed_steps_policy, run_em
from ._engine.mstep import EMPTY_SHARE, _NK_GUARD, MStep, mstep, reseed_empty
from ._engine.parallel import with_single_threaded_blas
from ._engine.params import Params, full_covariances, params_from_covariances
from ._engine.dask_source import DaskSource, is_dask
from ._engine.namespaces import is_device_array
from ._engine.producers import row_pass, thread_pass
from ._engine.sources import ArraySource, Source, default_chunk_rows
from ._engine.stats import stats_from_resp
from ._models.registry import get_model

DEFAULT_REG_COVAR = 1e-6

# A covariance whose smallest eigenvalue is below -_PSD_RTOL * (largest) is not a
# rounding-error away from positive semi-definite: it is wrong, and we say so.
_PSD_RTOL = 1e-8


def _fmt(value: float) -> str:
    """A short readable number: two decimals, or three significant digits if tiny."""
    value = float(value) + 0.0  # no "-0.0"
    if value == 0.0 or 0.01 <= abs(value) < 1e6:
        return repr(round(value, 2))
    return f"{value:.3g}"


def _fmt_array(a) -> str:
    if a.ndim == 1:
        return "[" + ", ".join(_fmt(v) for v in a) + "]"
    return "[" + ", ".join(_fmt_array(row) for row in a) + "]"


def _regularised(cov: np.ndarray, reg_covar: float) -> np.ndarray:
    """``cov`` itself if positive definite, else ``cov`` plus the smallest jitter
    (``reg_covar``, then x10 at a time) on its diagonal that makes it so."""
    try:
        linalg.cholesky(cov, lower=True)
        return cov
    except linalg.LinAlgError:
        pass
    jitter = reg_covar if reg_covar > 0 else DEFAULT_REG_COVAR
    eye = np.eye(cov.shape[0])
    for _ in range(30):
        candidate = cov + jitter * eye
        try:
            linalg.cholesky(candidate, lower=True)
        except linalg.LinAlgError:
            jitter *= 10.0  # reg_covar is lost in rounding at this data scale
            continue
        warnings.warn(
            f"The covariance {_fmt_array(cov)} is singular; added {jitter:g} to its "
            "diagonal (as reg_covar does in every M-step) so that the density is "
            "defined. Pass a positive definite covariance to avoid this.",
            UserWarning,
            stacklevel=4,
        )
        return candidate
    raise ValueError(  # pragma: no cover - unreachable for finite PSD input
        "Could not regularise the covariance; pass a positive definite matrix."
    )


MAX_STEPS = 1_000_000  # Mixture.fit's largest n_steps


class Gauss:
    """One Gaussian component: mean ``mu``, covariance ``cov`` and weight ``pi``.

    Parameters
    ----------
    mu : array-like of shape (D,) or float
        The mean. A number makes a one-dimensional Gaussian.
    cov : array-like of shape (D, D), (D,) or float, default=None
        The covariance: a matrix, the diagonal of a diagonal matrix, or a variance
        ``s`` meaning ``s * I``. None means the identity. It must be symmetric and
        positive semi-definite; a singular one gets a small jitter (``1e-6``, more if
        the data's scale needs it) added to its diagonal, with a warning, so that the
        density is defined.
    pi : float, default=1.0
        The mixing weight, >= 0. A :class:`Mixture` normalises the weights of its
        components to sum to one when it uses them.

    Attributes
    ----------
    mu : ndarray of shape (D,)
    cov : ndarray of shape (D, D)
    pi : float
    r : ndarray of shape (n,) or None
        This component's responsibilities for the rows of the last E-step: normalised
        after :meth:`Mixture.expectation`, the unnormalised ``pi * p(x)`` after
        :meth:`Gauss.expectation`, None before any.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import Gauss
    >>> g = Gauss([0.1, 2.3], np.eye(2), 1 / 3)
    >>> g
    Gauss(mu=[0.1, 2.3], cov=[[1.0, 0.0], [0.0, 1.0]], pi=0.33)
    >>> float(g.p([[0.1, 2.3]])[0])  # 1 / (2 pi)
    0.15915494309189535
    """

    def __init__(self, mu, cov=None, pi=1.0):
        self.mu = mu
        self.cov = np.eye(self._mu.shape[0]) if cov is None else cov
        self.pi = pi
        self.r = None

    # ------------------------------------------------------------ parameters
    @property
    def mu(self) -> np.ndarray:
        return self._mu

    @mu.setter
    def mu(self, value):
        try:
            mu = np.array(value, dtype=np.float64)  # a copy: the caller keeps theirs
        except (TypeError, ValueError):
            raise ValueError(f"mu must be a number or a 1-D array of numbers, got "
                             f"{value!r}.") from None
        if mu.ndim == 0:
            mu = mu.reshape(1)
        if mu.ndim != 1 or mu.shape[0] == 0:
            raise ValueError(
                f"mu must be a number or a 1-D array of D numbers, got shape {mu.shape}."
            )
        if not np.all(np.isfinite(mu)):
            raise ValueError(f"mu must be finite, got {mu}.")
        if hasattr(self, "_cov") and self._cov.shape[0] != mu.shape[0]:
            raise ValueError(
                f"mu has {mu.shape[0]} dimensions but cov is {self._cov.shape}; set a "
                "new Gauss for a different dimension."
            )
        self._mu = mu

    @property
    def cov(self) -> np.ndarray:
        return self._cov

    @cov.setter
    def cov(self, value):
        d = self._mu.shape[0]
        try:
            cov = np.array(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"cov must be a number, a 1-D array of variances or a "
                             f"(D, D) matrix of numbers, got {value!r}.") from None
        if cov.ndim == 0:
            cov = cov * np.eye(d)
        elif cov.ndim == 1 and cov.shape[0] == d:
            cov = np.diag(cov)
        if cov.shape != (d, d):
            raise ValueError(
                f"cov must be a ({d}, {d}) matrix for a {d}-dimensional mu (or its "
                f"diagonal, or one variance), got shape {np.shape(value)}."
            )
        if not np.all(np.isfinite(cov)):
            raise ValueError(f"cov must be finite, got {_fmt_array(cov)}.")
        scale = max(np.abs(cov).max(), np.finfo(np.float64).tiny)
        if not np.allclose(cov, cov.T, rtol=1e-8, atol=1e-12 * scale):
            raise ValueError(
                f"cov must be symmetric, got {_fmt_array(cov)}; pass (cov + cov.T) / 2 "
                "if the asymmetry is rounding."
            )
        cov = cov / 2.0 + cov.T / 2.0  # no overflow at 1e308
        eigenvalues = linalg.eigvalsh(cov)
        if eigenvalues[0] < -_PSD_RTOL * max(eigenvalues[-1], 0.0):
            raise ValueError(
                f"cov must be positive semi-definite, but {_fmt_array(cov)} has the "
                f"eigenvalue {eigenvalues[0]:.3g}; a covariance matrix cannot have "
                "negative variance in any direction."
            )
        self._cov = _regularised(cov, DEFAULT_REG_COVAR)

    @property
    def pi(self) -> float:
        return self._pi

    @pi.setter
    def pi(self, value):
        pi = check_real(value, "pi", minimum=0.0)
        if not np.isfinite(pi) or pi < 0:
            raise ValueError(f"pi must be a finite weight >= 0, got {value!r}.")
        self._pi = pi

    @property
    def n_features(self) -> int:
        """The dimension D."""
        return self._mu.shape[0]

    def _set_fitted(self, mu, cov, pi):
        # The M-step's output is positive definite by construction: skip the checks.
        self._mu, self._cov, self._pi = mu, cov, float(pi)

    def _params(self) -> Params:
        return params_from_covariances(
            [1.0], self._mu[None], self._cov[None], "full",
            error_hint=" (This Gauss's cov is no longer positive definite; assign a "
                       "new cov.)",
        )

    def __repr__(self) -> str:
        return (
            f"Gauss(mu={_fmt_array(self._mu)}, cov={_fmt_array(self._cov)}, "
            f"pi={_fmt(self._pi)})"
        )

    # --------------------------------------------------------------- density
    def log_p(self, X) -> np.ndarray:
        """Log-density of each row of X, shape (n,), through the Cholesky factor."""
        X = _check_X(X, self.n_features)
        return log_gaussian_prob(X, self._params())[:, 0]

    def p(self, X) -> np.ndarray:
        """Density of each row of X, shape (n,): ``exp(log_p(X))``.

        Far from the mean this is 0 in floating point; use :meth:`log_p` to compare
        densities there.
        """
        return np.exp(self.log_p(X))

    # -------------------------------------------------------------------- EM
    def expectation(self, X) -> np.ndarray:
        """Set ``r`` to this component's unnormalised responsibilities ``pi * p(x)``.

        This is the textbook per-component E-step. Normalising across components in
        this linear space underflows (0 / 0) for rows far from every component; use
        :meth:`Mixture.expectation`, which normalises in log space, for fitting.

        Returns
        -------
        log_r : ndarray of shape (n,)
            ``log(pi) + log_p(X)``, the same quantity in log space (never underflows).
        """
        with np.errstate(divide="ignore"):  # pi == 0 gives log 0 = -inf, on purpose
            log_r = np.log(self._pi) + self.log_p(X)
        self.r = np.exp(log_r)
        return log_r

    def _resp(self, X) -> np.ndarray:
        if self.r is None:
            raise ValueError(
                "This Gauss has no responsibilities yet: run expectation(X) on its "
                "Mixture first (or set r to one weight per row of X)."
            )
        r = np.asarray(self.r, dtype=np.float64)
        if X is not None and r.shape != (X.shape[0],):
            raise ValueError(
                f"r has shape {r.shape} but X has {X.shape[0]} rows; run "
                "expectation on the same X as maximization."
            )
        return r

    def maximize_mu(self, X) -> None:
        """Set ``mu`` to the responsibility-weighted mean of the rows of X.

        Left unchanged if the component has no responsibility for any row.
        """
        X = _check_X(X, self.n_features)
        r = self._resp(X)
        nk = r.sum()
        if nk > 0:
            # Averaging deviations from the current mean keeps every digit when the
            # data sit far from the origin.
            self._mu = self._mu + r @ (X - self._mu) / nk

    def maximize_sigma(self, X, reg_covar: float = DEFAULT_REG_COVAR) -> None:
        """Set ``cov`` to the responsibility-weighted scatter about ``mu``, plus
        ``reg_covar`` on the diagonal.

        Call :meth:`maximize_mu` first, as the textbook does, to get the scatter about
        the new mean (the maximum-likelihood covariance). Left unchanged if the
        component has no responsibility for any row.
        """
        X = _check_X(X, self.n_features)
        r = self._resp(X)
        nk = r.sum()
        if nk > 0:
            diff = X - self._mu
            cov = (diff * r[:, None]).T @ diff / (nk + _NK_GUARD)
            cov = cov / 2.0 + cov.T / 2.0  # no overflow at 1e308
            cov[np.diag_indices_from(cov)] += reg_covar
            self.cov = cov  # checked: reg_covar=0 on a collapsed component warns

    def maximize_pi(self) -> None:
        """Set ``pi`` to the mean responsibility (the share of the rows it explains)."""
        r = self._resp(None)
        self._pi = float((r.sum() + _NK_GUARD) / r.shape[0])

    def maximization(self, X, reg_covar: float = DEFAULT_REG_COVAR) -> None:
        """The textbook M-step of one component: ``maximize_mu``, ``maximize_sigma``,
        ``maximize_pi``, in that order."""
        self.maximize_mu(X)
        self.maximize_sigma(X, reg_covar)
        self.maximize_pi()


def _check_X(X, n_features: int, allow_missing: bool = False) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1 and n_features == 1:
        X = X[:, None]
    elif X.ndim == 1:
        X = X[None, :]  # one row
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array of rows, got shape {X.shape}.")
    if X.shape[1] != n_features:
        raise ValueError(
            f"X has {X.shape[1]} features, but the Gaussians have {n_features}."
        )
    if allow_missing:
        if np.isinf(X).any():
            raise ValueError("X contains infinity; drop or replace those rows first.")
        check_rows_observed(X)
    elif not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinity; drop or impute those rows first "
                         "(or Mixture(..., nan_policy='marginalize') for NaN).")
    return X


def estimator_parameters(estimator):
    """(weights, means, full covariances) of a fitted mixture estimator.

    Accepts gaussmix's or scikit-learn's ``GaussianMixture`` (or
    ``BayesianGaussianMixture``) with any ``covariance_type``.
    """
    for attribute in ("weights_", "means_", "covariances_"):
        if not hasattr(estimator, attribute):
            raise ValueError(
                f"{type(estimator).__name__} has no {attribute}: fit it first (or pass "
                "a Mixture)."
            )
    from ._engine.namespaces import host_if_device

    # An estimator fitted on a device (PyTorch, CuPy) keeps its attributes there.
    means = np.asarray(host_if_device(estimator.means_), dtype=np.float64)
    family = get_model(getattr(estimator, "covariance_type", "full")).family
    covs = full_covariances(host_if_device(estimator.covariances_), family, *means.shape)
    weights = np.asarray(host_if_device(estimator.weights_), dtype=np.float64)
    return weights, means, covs


class Mixture(MutableSequence):
    """A Gaussian mixture as a list of :class:`Gauss` components, fitted by EM.

    Parameters
    ----------
    components : iterable of Gauss, default=()
        Any iterable, a generator too. All components must have the same dimension.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance in the M-step, as in
        :class:`gaussmix.GaussianMixture`; keeps a collapsing component positive
        definite. With 0, a collapse raises a ValueError that says to increase it.
    nan_policy : {"raise", "marginalize"}, default="raise"
        "marginalize": NaN in X is a coordinate missing at random, as in
        :class:`gaussmix.GaussianMixture` (``expectation``, ``maximization``, ``fit``,
        ``log_p``, ``predict``... accept such rows; a component's own methods do not).

    Attributes
    ----------
    log_likelihoods_ : list of float
        Total log-likelihood of the data at each E-step since :meth:`fit` started
        (``log_likelihoods_[t]`` is after ``t`` EM steps).
    n_iter_ : int
        EM steps (M-steps) run since :meth:`fit` started.
    converged_ : bool
        Whether the last :meth:`fit` stopped on ``tol``.

    Notes
    -----
    Weights are normalised to sum to one whenever the mixture uses them; a mixture of
    ``Gauss(..., pi=1)`` components therefore starts with equal weights.

    A component that loses every row (for instance one started far from the data) is
    re-seeded at the row the mixture explains worst, with an
    :class:`~gaussmix.EmptyComponentWarning`, exactly as ``GaussianMixture`` does.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_blobs
    >>> from gaussmix import Gauss, Mixture
    >>> X, y = make_blobs(n_samples=100, centers=3, random_state=2)
    >>> rng = np.random.default_rng(0)
    >>> mixture = Mixture(Gauss(rng.standard_normal(2) * 4, np.eye(2), 1 / 3)
    ...                   for _ in range(3))
    >>> mixture = mixture.fit(X)
    >>> len(mixture), len(mixture.log_likelihoods_)
    (3, 101)
    """

    def __init__(self, components=(), reg_covar: float = DEFAULT_REG_COVAR,
                 nan_policy: str = "raise"):
        reg_covar = check_real(reg_covar, "reg_covar", minimum=0.0,
                               what="a finite number >= 0 (default 1e-6)")
        if nan_policy not in ("raise", "marginalize"):
            raise ValueError(f"nan_policy must be 'raise' or 'marginalize', got "
                             f"{nan_policy!r}.")
        self.reg_covar = reg_covar
        self.nan_policy = nan_policy
        self._components: list[Gauss] = []
        self.log_likelihoods_: list[float] = []
        self.n_iter_ = 0
        self.converged_ = False
        self._n_rows = None
        self.extend(components)

    # ------------------------------------------------------------- as a list
    @staticmethod
    def _checked(g, others) -> Gauss:
        if not isinstance(g, Gauss):
            raise TypeError(f"A Mixture holds Gauss components, got {type(g).__name__}.")
        if any(c is g for c in others):
            # Responsibilities live on the component: one object cannot hold two sets.
            raise ValueError(
                "This Gauss object is already in the mixture; add a separate Gauss "
                "(e.g. copy.deepcopy(g)) for each component."
            )
        dims = {c.n_features for c in others}
        if dims and g.n_features not in dims:
            raise ValueError(
                f"This Gauss has {g.n_features} dimensions but the mixture's have "
                f"{dims.pop()}."
            )
        return g

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Mixture(self._components[index], reg_covar=self.reg_covar)
        return self._components[index]

    def __setitem__(self, index, value):
        if isinstance(index, slice):
            value = list(value)
            kept = [c for i, c in enumerate(self._components)
                    if i not in range(len(self._components))[index]]
            for i, g in enumerate(value):
                self._checked(g, kept + value[:i])
        else:
            others = list(self._components)
            del others[index]
            self._checked(value, others)
        self._components[index] = value

    def __delitem__(self, index):
        del self._components[index]

    def __len__(self) -> int:
        return len(self._components)

    def insert(self, index, value) -> None:
        self._components.insert(index, self._checked(value, self._components))

    def __repr__(self) -> str:
        if not self._components:
            return "Mixture([])"
        inner = ",\n         ".join(repr(g) for g in self._components)
        return f"Mixture([{inner}])"

    # ------------------------------------------------------------ parameters
    @property
    def n_features(self) -> int:
        """The dimension D."""
        return self._nonempty()[0].n_features

    def _nonempty(self):
        if not self._components:
            raise ValueError("The mixture has no components; append a Gauss first.")
        return self._components

    @property
    def weights(self) -> np.ndarray:
        """Mixing weights, normalised to sum to one, shape (K,)."""
        pis = np.array([g.pi for g in self._nonempty()])
        total = pis.sum()
        if total <= 0:
            raise ValueError("All weights pi are 0; give at least one component pi > 0.")
        return pis / total

    @property
    def means(self) -> np.ndarray:
        """Component means, shape (K, D)."""
        return np.stack([g.mu for g in self._nonempty()])

    @property
    def covariances(self) -> np.ndarray:
        """Component covariances, shape (K, D, D)."""
        return np.stack([g.cov for g in self._nonempty()])

    def _params(self) -> Params:
        return params_from_covariances(
            self.weights, self.means, self.covariances, "full",
            error_hint=" (A component's cov is not positive definite; assign it a new "
                       "cov.)",
        )

    # -------------------------------------------------------------------- EM
    # BLAS is held to one thread: these are many small D x D calls, which OpenBLAS's
    # thread pools make 3-4x slower (measured on 150 and on 200,000 rows).
    @with_single_threaded_blas
    def expectation(self, X) -> float:
        """E-step: set every component's ``r`` to its normalised responsibilities.

        Computed in log space (log-sum-exp across components), so rows far from every
        component still get responsibilities that sum to one. The log-likelihood is
        appended to ``log_likelihoods_``.

        Returns
        -------
        log_likelihood : float
            Total log-likelihood of X under the current parameters.
        """
        return self._expectation(self._checked_X(X))

    def _expectation(self, X) -> float:
        # On a checked X: fit checks its X once, not in every step.
        log_resp, row_loglik = log_resp_and_norm(X, self._params())
        resp = np.exp(log_resp)
        for k, g in enumerate(self._components):
            g.r = resp[:, k].copy()
        log_likelihood = float(row_loglik.sum())
        self.log_likelihoods_.append(log_likelihood)
        self._n_rows = X.shape[0]
        return log_likelihood

    @with_single_threaded_blas
    def maximization(self, X) -> None:
        """M-step: new ``mu``, ``cov`` and ``pi`` for every component from its ``r``.

        The engine's M-step of the ``"full"`` model: statistics accumulated about the
        current means (exact for data far from the origin), ``reg_covar`` added to
        every covariance, an emptied component re-seeded.
        """
        self._maximization(self._checked_X(X))

    def _maximization(self, X) -> None:
        components = self._nonempty()
        model = get_model("full")
        gaps = missing_rows(X) is not None
        if gaps:
            # Rows with gaps contribute their conditional moments, which the current
            # parameters give: the E-step's statistics (the r of expectation(X)).
            stats = estep_chunk(X, None, self._params(), model.stats_kind)
        else:
            resp = np.column_stack([g._resp(X) for g in components])
            stats = stats_from_resp(X, resp, model.stats_kind, centers=self.means)
        n = X.shape[0]
        stats = replace(stats, weight=float(n), n_rows=n)
        if np.any(stats.nk <= EMPTY_SHARE * n):
            # Re-seed where the current parameters explain the data worst, as the
            # estimator's EM loop does. The E-step knows that row (among the complete
            # ones: a row with gaps is no seed; none when every row has one).
            if stats.worst_row is None and not gaps:
                row_loglik = log_resp_and_norm(X, self._params())[1]
                worst = int(np.argmin(row_loglik))
                stats = replace(stats, worst_loglik=float(row_loglik[worst]),
                                worst_row=X[worst].copy())
            stats, reseeded = reseed_empty(stats)
            if reseeded:
                warnings.warn(
                    f"Component {reseeded[0]} lost every row; it was re-seeded at the "
                    "row the mixture explained worst. Consider fewer components or a "
                    "start nearer the data.",
                    EmptyComponentWarning,
                    stacklevel=4,  # the caller of fit or maximization
                )
        params = mstep(stats, model, self.reg_covar)
        for k, g in enumerate(components):
            g._set_fitted(params.means[k].copy(), params.covariances[k].copy(),
                          params.weights[k])
        self.n_iter_ += 1

    @with_single_threaded_blas
    def fit(self, X, n_steps: int = 100, tol: float | None = None, callback=None):
        """Run EM: exactly ``n_steps`` steps, or fewer if ``tol`` is given.

        Parameters
        ----------
        X : array-like of shape (n, D), or a Source
        n_steps : int, default=100
            EM steps (an E-step then an M-step each), at most 1 000 000.
        tol : float or None, default=None
            If given, stop once the mean log-likelihood per row changes by less than
            ``tol`` in one step (``GaussianMixture``'s ``tol``).
        callback : callable (step, mixture) -> None, optional
            Called with step 0 before the first step and after every step, once the
            responsibilities and ``log_likelihoods_[step]`` are up to date.

        Returns
        -------
        self : Mixture
            Its components hold the fitted parameters and responsibilities under them.
        """
        # A cap on the cap: a million steps is far past where EM stops moving, and
        # a mistaken 1e30 would never return.
        n_steps = check_int(n_steps, "n_steps", minimum=0, maximum=MAX_STEPS)
        tol = check_real(tol, "tol", minimum=0.0, allow_none=True)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be None or a callable (step, mixture), got "
                            f"{type(callback).__name__}.")
        source = self._source(X)
        if source.n_rows < 1:
            raise ValueError("X has no rows; fit needs at least one row of data.")
        self.log_likelihoods_ = []
        self.n_iter_ = 0
        self.converged_ = False

        def on_iteration(step, value, change, stats, params):
            self.log_likelihoods_.append(stats.loglik)
            self.n_iter_ = step
            if callback is not None:
                self._take(params, source)
                callback(step, self)

        def on_reseed(component, step):
            warnings.warn(
                f"Component {component} lost every row; it was re-seeded at the row the "
                "mixture explained worst. Consider fewer components or a start nearer "
                "the data.",
                EmptyComponentWarning,
                stacklevel=5,  # on_reseed < run_em < fit < BLAS limiter < caller
            )

        model = get_model("full")
        result = run_em(
            thread_pass(source, model.stats_kind), MStep(model, reg_covar=self.reg_covar),
            self._params(), fixed_steps_policy(tol), max_iter=int(n_steps),
            on_iteration=on_iteration, on_reseed=on_reseed,
        )
        self.converged_ = result.converged
        self._take(result.params, source)
        return self

    def _source(self, X):
        """A Source as given, or the checked rows of X as one."""
        if is_dask(X):  # EM on the workers; per-row results lazy
            X = DaskSource(X, allow_missing=self.nan_policy == "marginalize")
        elif is_device_array(X):  # EM on its device (PyTorch, CuPy, ...)
            from ._engine.device import DeviceSource

            X = DeviceSource(X)
        if isinstance(X, Source):
            if X.n_features != self.n_features:
                raise ValueError(f"The source has {X.n_features} columns but the "
                                 f"mixture's components have {self.n_features}.")
            return X
        X = self._checked_X(X)
        return ArraySource(X, None, default_chunk_rows(len(self), X.shape[1]))

    def _checked_X(self, X):
        return _check_X(X, self.n_features, self.nan_policy == "marginalize")

    def _take(self, params: Params, source) -> None:
        """Set every component to ``params`` and its ``r`` to the responsibilities of
        the source's rows under them (one pass)."""
        resp = row_pass(source, lambda c: responsibilities(c, params))
        for k, g in enumerate(self._components):
            g._set_fitted(params.means[k].copy(), params.covariances[k].copy(),
                          params.weights[k])
            g.r = resp[:, k].copy()
        self._n_rows = source.n_rows

    # ------------------------------------------------------------ prediction
    @with_single_threaded_blas
    def log_p(self, X) -> np.ndarray:
        """Log-density of the mixture at each row of X (an array or a Source), shape (n,)."""
        params = self._params()
        return row_pass(self._source(X), lambda c: row_log_likelihoods(c, params))

    def p(self, X) -> np.ndarray:
        """Density of the mixture at each row of X, shape (n,)."""
        return np.exp(self.log_p(X))

    def log_likelihood(self, X) -> float:
        """Total log-likelihood of the rows of X."""
        return float(self.log_p(X).sum())

    @with_single_threaded_blas
    def predict_proba(self, X) -> np.ndarray:
        """Responsibilities of every component for each row, shape (n, K).

        Unlike :meth:`expectation` this leaves the components' ``r`` alone.
        """
        params = self._params()
        return row_pass(self._source(X),
                        lambda c: responsibilities(c, params))

    @with_single_threaded_blas
    def predict(self, X) -> np.ndarray:
        """The most probable component of each row, shape (n,)."""
        params = self._params()
        return row_pass(self._source(X), lambda c: most_probable(c, params))

    def sample(self, n: int = 1, random_state=None):
        """Draw ``n`` rows from the mixture.

        Parameters
        ----------
        n : int, default=1
        random_state : None, int or numpy Generator

        Returns
        -------
        X : ndarray of shape (n, D)
        labels : ndarray of shape (n,)
            The component each row was drawn from.
        """
        # An array of n rows must fit in memory: more than 2**40 cannot.
        n = check_int(n, "n", minimum=1, maximum=2**40)
        rng = np.random.default_rng(check_random_state(random_state))
        labels = rng.choice(len(self), size=int(n), p=self.weights)
        X = np.empty((int(n), self.n_features))
        for k, g in enumerate(self._components):
            rows = labels == k
            # Through the Cholesky factor: exact for the (regularised) covariance.
            chol = linalg.cholesky(g.cov, lower=True)
            X[rows] = g.mu + rng.standard_normal((rows.sum(), g.n_features)) @ chol.T
        return X, labels

    # ------------------------------------------------------------ conversion
    @classmethod
    def from_estimator(cls, estimator, reg_covar: float | None = None) -> "Mixture":
        """A Mixture with the parameters of a fitted ``GaussianMixture``.

        Parameters
        ----------
        estimator : fitted gaussmix or scikit-learn GaussianMixture
            Any ``covariance_type``; tied, diagonal and spherical covariances become
            the equivalent full matrices.
        reg_covar : float, optional
            Defaults to the estimator's ``reg_covar``.
        """
        weights, means, covs = estimator_parameters(estimator)
        if reg_covar is None:
            reg_covar = getattr(estimator, "reg_covar", DEFAULT_REG_COVAR)
        mixture = cls(reg_covar=reg_covar)
        mixture.extend(Gauss(m, c, w) for w, m, c in zip(weights, means, covs))
        return mixture

    def to_estimator(self):
        """A fitted :class:`gaussmix.GaussianMixture` (``covariance_type="full"``)
        with this mixture's parameters.

        Its ``*_init`` parameters are set to these parameters too, so refitting it
        continues from here. ``converged_``, ``n_iter_``, ``lower_bound_`` and
        ``lower_bounds_`` come from the last :meth:`fit` (mean log-likelihoods per
        row, as the estimator reports them); before any fit they are False, 0, -inf
        and [].
        """
        from ._estimator import GaussianMixture, set_fitted  # the face, where needed

        params = self._params()
        precisions = params.precisions()
        gm = GaussianMixture(
            n_components=len(self),
            covariance_type="full",
            reg_covar=self.reg_covar,
            weights_init=params.weights.copy(),
            means_init=params.means.copy(),
            precisions_init=precisions.copy(),
        )
        n = self._n_rows
        history = [ll / n for ll in self.log_likelihoods_] if n else []
        return set_fitted(
            gm, params, n_features=self.n_features, converged=self.converged_,
            n_iter=self.n_iter_, lower_bound=history[-1] if history else -np.inf,
            lower_bounds=history[1:],
            previous_log_likelihood=history[-2] if len(history) > 1 else -np.inf,
            precisions=precisions,
        )

