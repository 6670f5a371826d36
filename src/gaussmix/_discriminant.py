"""Discriminant analysis with mixtures: mclust's ``MclustDA`` and EDDA as a classifier.

Each class's rows are modelled by a Gaussian mixture; a new row goes to the class of
largest ``prior_c * f_c(x)``. The per-class fits are the package's mclust fits:

* ``model_type="EDDA"`` (mclust's ``MclustDA(modelType = "EDDA")``): one component per
  class and one covariance model for all, the model of largest BIC. Each candidate is one
  M-step from the classes (``mstep(z = unmap(class))``); its log-likelihood is that of
  the mixture with the class proportions as weights, its df ``K d + nVarParams``
  (mclust 6.0's count, ``bic(equalPro = TRUE)``).
* ``model_type="MclustDA"``: on each class its own :func:`gaussmix.select` (G and model
  by BIC, default G = 1..5), the same grid ``mclustBIC`` fits. The overall
  log-likelihood is mclust's ``logLik.MclustDA``, the df the sum of the classes' counts.

Class priors are the training proportions, given ones, or re-estimated on the rows
being classified (mclust's ``classPriorProbs``: EM on the class proportions with the
class densities held). :meth:`MixtureDiscriminant.cross_validate` is ``cvMclustDA``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._engine.estep import row_log_likelihoods, weighted_log_prob
from ._engine.init import one_hot
from ._engine.parallel import with_single_threaded_blas
from ._engine.sources import ArraySource
from ._errors import FitError
from ._models.mclust import MCLUST_MODELS, UNIVARIATE_MODELS, _canonical, n_var_params
from ._models.registry import get_model

__all__ = ["MixtureDiscriminant", "CrossValidation"]

MODEL_TYPES = ("MclustDA", "EDDA")
# mclust's classPriorProbs: its tolerance and iteration cap.
_PRIOR_EPS = math.sqrt(np.finfo(np.float64).eps)
_PRIOR_MAX_ITER = 1000


@dataclass
class ClassModel:
    """One class's fitted mixture: mclust model name, G, parameters, fit figures.

    ``loglik`` and ``bic`` are the class's own fit (MclustDA); NaN for EDDA, whose
    classes share one fit.
    """

    label: object
    n: float
    model: str
    G: int
    params: object
    loglik: float = math.nan
    bic: float = math.nan


@dataclass
class CrossValidation:
    """mclust's ``cvMclustDA``: cross-validated error rate and Brier score.

    Attributes
    ----------
    error, se_error : float
        Misclassification rate over the held-out folds (averaged with the folds' sizes
        as weights) and its standard error.
    brier, se_brier : float
        Brier score (``sum (onehot - p)^2 / (2 n)`` per fold) and its standard error.
    classification : ndarray of shape (n,)
        Each row's class predicted by the model fitted without its fold.
    proba : ndarray of shape (n, n_classes)
        The held-out class probabilities.
    folds : ndarray of int of shape (n,)
        Each row's fold, 0-based.
    """

    error: float
    se_error: float
    brier: float
    se_brier: float
    classification: np.ndarray
    proba: np.ndarray
    folds: np.ndarray


def brier_score(proba, y_codes) -> float:
    """mclust's ``BrierScore``: ``sum (onehot(y) - p)^2 / (2 n)``, rows normalised."""
    proba = np.asarray(proba, dtype=np.float64)
    proba = proba / proba.sum(axis=1, keepdims=True)
    truth = one_hot(np.asarray(y_codes), proba.shape[1])
    return float(((truth - proba) ** 2).sum() / (2 * proba.shape[0]))


class MixtureDiscriminant(ClassifierMixin, BaseEstimator):
    """Gaussian mixture discriminant analysis, as mclust's ``MclustDA`` and EDDA.

    Parameters
    ----------
    model_type : {"MclustDA", "EDDA"}, default="MclustDA"
        "MclustDA": a mixture per class, G and covariance model chosen by BIC per class.
        "EDDA": one Gaussian per class, one covariance model (chosen by BIC) for all.
    G : int, iterable of int, or dict, optional
        Numbers of components tried per class (MclustDA; default ``range(1, 6)``, as
        mclust). A dict maps a class label to its own G. EDDA has G = 1.
    models : str, list of str, or dict, optional
        mclust covariance models tried (default all 14; ``"E"``, ``"V"`` for one
        feature; without EEE, EEV, VEV, VVV when there are no more rows than features,
        as mclust). A dict maps a class label to its own list (MclustDA).
    priors : None, "adjusted" or array-like of shape (n_classes,), default=None
        Class prior probabilities for prediction: None, the training proportions;
        "adjusted", re-estimated on the rows being classified
        (:meth:`class_prior_probs`, mclust's ``classPriorProbs``); an array, those
        priors (normalised to sum to 1), in the order of ``classes_``.
    tol : float, default=1e-5
        EM's relative tolerance in the per-class fits (mclust's).
    random_state : None, int or numpy Generator
        The initialisation subset of a class with more than 2000 rows.
    n_jobs : int, optional
        Threads for each class's grid of fits (:func:`gaussmix.select`).
    backend : {"auto", "numba", "numpy"}, default="auto"
        How the per-class fits run (see :func:`gaussmix.select`).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    class_prior_ : ndarray of shape (n_classes,)
        Training proportions (weighted with ``sample_weight``).
    class_models_ : list of ClassModel
        Per class: its mclust model, G and parameters.
    bic_ : pandas.Series
        EDDA: the BIC of every candidate model (NaN where it could not be fitted).
    loglik_, df_, bic_value_ : float
        mclust's log-likelihood, degrees of freedom (mclust 6.0's count) and BIC.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When fitted on a DataFrame with string column names.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> import gaussmix
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = gaussmix.MixtureDiscriminant().fit(X, y)        # doctest: +SKIP
    >>> [(m.model, m.G) for m in clf.class_models_]           # doctest: +SKIP
    [('EEE', 2), ('XXX', 1), ('XXX', 1)]
    >>> print(clf.summary())                                  # doctest: +SKIP
    """

    def __init__(self, model_type="MclustDA", G=None, models=None, priors=None, *,
                 tol=1e-5, random_state=None, n_jobs=None, backend="auto"):
        self.model_type = model_type
        self.G = G
        self.models = models
        self.priors = priors
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.backend = backend

    # ------------------------------------------------------------------- fitting
    # One BLAS limit for the whole fit (each select's singles, grid and final M-step
    # would set their own): the products are small, and setting a limit costs 50-150
    # us, paid a dozen times per fit otherwise.
    @with_single_threaded_blas
    def fit(self, X, y, sample_weight=None):
        """Fit a mixture to each class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (any hashable values).
        sample_weight : array-like of shape (n_samples,), optional
            Row weights: a weight w counts the row w times. EDDA takes any weights >= 0;
            MclustDA, whose hierarchical start has no weights, takes whole numbers (it
            repeats each row that many times).

        Returns
        -------
        self
        """
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be 'MclustDA' or 'EDDA', got "
                             f"{self.model_type!r}.")
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(f"MixtureDiscriminant needs at least 2 classes in y, got "
                             f"{self.classes_.size} class: {self.classes_.tolist()}.")
        from ._validation import check_sample_weight

        weights = None
        if sample_weight is not None:
            check_sample_weight(sample_weight, X.shape[0], np.float64)  # its errors
            # The weights as counts (that check rescales them): n = their sum in the BIC.
            weights = np.broadcast_to(np.asarray(sample_weight, dtype=np.float64),
                                      (X.shape[0],)).copy()
        n_k = np.bincount(codes, weights=weights, minlength=self.classes_.size)
        if np.any(n_k <= 0):
            empty = self.classes_[n_k <= 0].tolist()
            raise ValueError(f"Every row of class(es) {empty} has sample_weight 0: no "
                             "class can be fitted to them; drop them from y or give "
                             "their rows a positive weight.")
        self.class_prior_ = n_k / n_k.sum()
        models = _candidate_models(self.models, X.shape, self.classes_)
        if self.model_type == "EDDA":
            self._fit_edda(X, codes, weights, models)
        else:
            self._fit_mclustda(X, codes, weights, models)
        return self

    def _fit_edda(self, X, codes, weights, models):
        import pandas as pd

        # mclust's unique(unlist(modelNames)): each model once, in the order given.
        names = list(dict.fromkeys(m for ms in models.values() for m in ms))
        source = ArraySource(X, weights, max(X.shape[0], 1))
        K, d = self.classes_.size, X.shape[1]
        n = float(X.shape[0] if weights is None else weights.sum())
        bic = np.full(len(names), np.nan)
        best = None
        from ._mclust.em import resolve_backend

        backend = resolve_backend(self.backend)
        for i, name in enumerate(names):
            try:
                params, loglik = _edda_fit(source, codes, K, name, weights, backend)
            except (FitError, np.linalg.LinAlgError):
                continue  # mclust's NA
            if not np.isfinite(loglik):
                continue
            df = K * d + n_var_params(name, K, d)
            bic[i] = 2.0 * loglik - df * math.log(n)
            # mclust keeps the last of equal maxima (``BIC[i] >= max(BIC)``).
            if best is None or bic[i] >= best[0]:
                best = (bic[i], name, params, loglik, df)
        if best is None:
            raise FitError("EDDA: none of the models could be fitted "
                           f"({', '.join(names)}); try other models.")
        self.bic_ = pd.Series(bic, index=pd.Index(names, name="model"), name="BIC")
        self.bic_value_, name, params, self.loglik_, self.df_ = best
        self.class_models_ = [
            ClassModel(label, float(nk), name, 1, params)
            for label, nk in zip(self.classes_, self.class_prior_ * n)]
        self._edda_params = params

    def _fit_mclustda(self, X, codes, weights, models):
        from ._mclust.select import select

        if weights is not None:
            if np.any(weights != np.round(weights)):
                raise ValueError("MclustDA takes whole-number sample weights only (it "
                                 "repeats each row w times); use model_type='EDDA' for "
                                 "fractional weights.")
            reps = weights.astype(np.intp)
            X, codes = np.repeat(X, reps, axis=0), np.repeat(codes, reps)
        grids = _per_class(self.G, self.classes_, "G", range(1, 6))
        self.class_models_, df = [], 0
        for k, label in enumerate(self.classes_):
            rows = X[codes == k]
            if rows.shape[0] < 2:
                raise ValueError(f"Class {label!r} has {rows.shape[0]} row; MclustDA "
                                 "fits a mixture to each class and needs at least 2 "
                                 "(use model_type='EDDA', or drop the class).")
            found = self._select_class(select, label, rows, grids[label], models[label])
            # One component is named by its class (XXX, XXI, XII, X), as mclust does.
            name = (found.best_model if found.best_G > 1
                    else get_model(found.best_model).single_class)
            self.class_models_.append(ClassModel(
                label, float(rows.shape[0]), name, found.best_G, found.params,
                found.loglik, found.bic_value))
            df += found.df
        self.df_ = int(df)
        log_dens = self._class_log_densities(X)
        self.loglik_ = float(logsumexp(log_dens + np.log(self.class_prior_), axis=1).sum())
        self.bic_value_ = 2.0 * self.loglik_ - self.df_ * math.log(X.shape[0])
        self.bic_ = None

    def _select_class(self, select, label, rows, G, models):
        """One class's select; when every cell fails, mclust's retreat: one model
        steps back to the one before it in mclust's list (G down by one from EII),
        several models fit one component fewer."""
        G = [G] if np.isscalar(G) else list(G)
        while True:
            try:
                return select(rows, G=G, models=models, tol=self.tol,
                              random_state=self.random_state, n_jobs=self.n_jobs,
                              backend=self.backend)
            except FitError as exc:
                failure = exc
            if len(models) == 1 and models[0] in MCLUST_MODELS[1:]:
                models = [MCLUST_MODELS[MCLUST_MODELS.index(models[0]) - 1]]
            else:
                G = [g - 1 for g in G]
            if min(G) < 1:
                raise FitError(f"Class {label!r}: {failure}") from failure

    # ---------------------------------------------------------------- prediction
    def _class_log_densities(self, X):
        """``log f_c(x)`` of every row and class, (n, n_classes)."""
        if self.model_type == "EDDA" and hasattr(self, "_edda_params"):
            params = self._edda_params
            return weighted_log_prob(X, params) - np.log(params.weights)
        return np.column_stack([row_log_likelihoods(X, m.params)
                                for m in self.class_models_])

    def _check_X(self, X):
        check_is_fitted(self, "class_models_")
        return validate_data(self, X, reset=False, dtype=np.float64)

    def _log_posterior(self, log_dens, priors):
        with np.errstate(divide="ignore"):
            joint = log_dens + np.log(priors)
        return joint - logsumexp(joint, axis=1, keepdims=True)

    def _priors_for(self, log_dens):
        priors = self.priors
        if priors is None:
            return self.class_prior_
        if isinstance(priors, str):
            if priors != "adjusted":
                raise ValueError(f"priors must be None, 'adjusted' or an array of "
                                 f"{self.classes_.size} class probabilities, got "
                                 f"{priors!r}.")
            return _adjusted_priors(self._log_posterior(log_dens, self.class_prior_),
                                    self.class_prior_)
        return _given_priors(priors, self.classes_.size)

    def predict_log_proba(self, X):
        """Log posterior class probabilities, (n_samples, n_classes)."""
        log_dens = self._class_log_densities(self._check_X(X))
        return self._log_posterior(log_dens, self._priors_for(log_dens))

    def predict_proba(self, X):
        """Posterior class probabilities, (n_samples, n_classes), in ``classes_`` order."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """The most probable class of each row (the first one on ties, as mclust)."""
        log_proba = self.predict_log_proba(X)
        return self.classes_[np.argmax(log_proba, axis=1)]

    def class_prior_probs(self, X):
        """Class priors re-estimated on new rows, as mclust's ``classPriorProbs``.

        EM on the class proportions with the fitted class densities held: starting from
        the mean posterior under the training proportions, each step reweights the
        posteriors by ``p / prior`` and averages them, until the proportions change by
        at most ``sqrt(eps) (1 + p)`` (at most 1000 steps).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_classes,)
        """
        log_dens = self._class_log_densities(self._check_X(X))
        return _adjusted_priors(self._log_posterior(log_dens, self.class_prior_),
                                self.class_prior_)

    # ---------------------------------------------------------- cross-validation
    def cross_validate(self, X, y, *, n_folds=10, folds=None, random_state=None):
        """mclust's ``cvMclustDA``: refit per fold, score the held-out rows.

        Each fold's model keeps the fitted per-class models and G (as mclust, the
        selection is not redone) and predicts with the full data's class priors (or
        the given ones). Fits ``X, y`` first when the classifier is not fitted.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        n_folds : int, default=10
            Class-balanced folds (each class's rows shuffled and dealt in turn), as
            mclust's ``balancedFolds``; ``n_folds = n_samples`` is leave-one-out.
        folds : array-like of int of shape (n_samples,), optional
            Each row's fold (any integer ids); overrides ``n_folds``.
        random_state : None, int or numpy Generator
            Draws the balanced folds.

        Returns
        -------
        CrossValidation
        """
        from sklearn.base import clone

        if not hasattr(self, "class_models_"):
            self.fit(X, y)
        X, y = validate_data(self, X, y, reset=False, dtype=np.float64)
        known = np.isin(y, self.classes_)
        if not known.all():
            raise ValueError(f"y holds label(s) {np.unique(y[~known]).tolist()} the "
                             "classifier was not fitted on; cross-validate on its data.")
        codes = np.searchsorted(self.classes_, y)
        fold = _folds(codes, n_folds, folds, random_state)
        ids = np.unique(fold)
        if ids.size < 2:
            raise ValueError("cross_validate needs at least 2 folds.")
        fixed = clone(self).set_params(
            G={m.label: [m.G] for m in self.class_models_},
            models={m.label: [m.model] for m in self.class_models_},
            priors=(self.class_prior_ if self.priors is None else self.priors))
        proba = np.empty((X.shape[0], self.classes_.size))
        errors, briers, sizes = [], [], []
        for f in ids:
            test = fold == f
            model = clone(fixed).fit(X[~test], y[~test])
            # A class missing from the training rows of a fold: mclust cannot fit it.
            if model.classes_.size != self.classes_.size:
                raise ValueError(f"Fold {f} holds every row of a class; use fewer folds.")
            p = model.predict_proba(X[test])
            proba[test] = p
            errors.append(float(np.mean(np.argmax(p, axis=1) != codes[test])))
            briers.append(brier_score(p, codes[test]))
            sizes.append(int(test.sum()))
        sizes = np.asarray(sizes, dtype=np.float64)
        est = [_weighted_mean_se(np.asarray(v), sizes) for v in (errors, briers)]
        return CrossValidation(est[0][0], est[0][1], est[1][0], est[1][1],
                               self.classes_[np.argmax(proba, axis=1)], proba,
                               np.searchsorted(ids, fold))

    # ------------------------------------------------------------------ reporting
    def summary(self, X=None, y=None) -> str:
        """A report in the spirit of mclust's ``summary(MclustDA)``.

        The fit's log-likelihood, n, df and BIC; each class's n, share, model and G;
        with ``X, y`` (the training data, or any labelled rows) the confusion matrix,
        classification error and Brier score.
        """
        check_is_fitted(self, "class_models_")
        title = "Gaussian finite mixture model for classification"
        lines = ["-" * len(title), title, "-" * len(title), "",
                 f"{self.model_type} model summary:", ""]
        n = sum(m.n for m in self.class_models_)
        n_text = f"{n:g}"
        head = ["log-likelihood", "n", "df", "BIC"]
        vals = [f"{self.loglik_:.4f}", n_text, str(int(self.df_)),
                f"{self.bic_value_:.4f}"]
        widths = [max(len(a), len(b)) for a, b in zip(head, vals)]
        lines.append(" ".join(h.rjust(w) for h, w in zip(head, widths)))
        lines.append(" ".join(v.rjust(w) for v, w in zip(vals, widths)))
        lines.append("")
        rows = [["Classes", "n", "%", "Model", "G"]]
        for m in self.class_models_:
            rows.append([str(m.label), f"{m.n:g}", f"{100 * m.n / n:.2f}", m.model,
                         str(m.G)])
        widths = [max(len(r[j]) for r in rows) for j in range(5)]
        for r in rows:
            lines.append(r[0].ljust(widths[0]) + " " +
                         " ".join(c.rjust(w) for c, w in zip(r[1:], widths[1:])))
        if X is not None and y is not None:
            y = np.asarray(y)
            proba = self.predict_proba(X)
            pred = self.classes_[np.argmax(proba, axis=1)]
            lines += ["", "Confusion matrix (rows: class, columns: predicted):"]
            lines += _confusion(y, pred, self.classes_)
            lines.append(f"Classification error = {np.mean(pred != y):.4f}")
            known = np.isin(y, self.classes_)
            if known.all():
                b = brier_score(proba, np.searchsorted(self.classes_, y))
                lines.append(f"Brier score          = {b:.4f}")
        return "\n".join(lines)


# ---------------------------------------------------------------------- helpers
def _edda_fit(source, codes, K, name, weights, backend="numpy"):
    """EDDA's one model: an M-step from the classes, then the mixture's loglik (mclust's
    ``me`` stopped after one iteration; the compiled twin reads unweighted rows only)."""
    from ._mclust.em import fit_mclust

    fit = fit_mclust(source, name, K, np.asarray(codes), max_iter=1,
                     backend=backend if weights is None else "numpy")
    return fit.params, fit.loglik


def _per_class(value, classes, what, default):
    """A setting given once for all classes, or as a dict of class -> setting."""
    if isinstance(value, dict):
        missing = [c for c in classes if c not in value]
        if missing:
            raise ValueError(f"{what} is a dict without the class(es) {missing}; give "
                             "every class an entry, or one value for all.")
        return {c: value[c] for c in classes}
    return {c: default if value is None else value for c in classes}


def _candidate_models(models, shape, classes):
    """mclust's default models for the data's shape, or the given ones, per class."""
    n, d = shape
    if d == 1:
        default = list(UNIVARIATE_MODELS)
    else:
        default = list(MCLUST_MODELS)
        if n <= d:  # as mclust's MclustDA: no full covariances from too few rows
            default = [m for m in default if m not in ("EEE", "EEV", "VEV", "VVV")]
    per_class = _per_class(models, classes, "models", default)
    out = {}
    for c, ms in per_class.items():
        ms = [ms] if isinstance(ms, str) else list(ms)
        try:  # mclust's one-component names (XXX, ...) too, as the summary shows them
            ms = [_canonical(m) for m in ms]
        except (ValueError, TypeError, AttributeError):
            raise ValueError(f"models must be mclust model names ({', '.join(MCLUST_MODELS)}"
                             f"; E, V for 1-D data), got {ms!r}.") from None
        for m in ms:
            if m not in MCLUST_MODELS + UNIVARIATE_MODELS:
                raise ValueError(f"Unknown mclust model {m!r}; use one of "
                                 f"{', '.join(MCLUST_MODELS)} (or E, V for 1-D data).")
            if (m in UNIVARIATE_MODELS) != (d == 1):
                raise ValueError(f"Model {m} is for {'1-D' if d > 1 else 'multivariate'}"
                                 f" data; the data have {d} feature(s).")
        if not ms:
            raise ValueError("models is empty; give at least one mclust model name.")
        out[c] = ms
    return out


def _given_priors(priors, n_classes):
    p = np.asarray(priors, dtype=np.float64).ravel()
    if p.shape != (n_classes,) or not np.all(np.isfinite(p)) or np.any(p < 0) \
            or p.sum() <= 0:
        raise ValueError(f"priors must be None, 'adjusted', or {n_classes} finite "
                         "non-negative class probabilities (in the order of classes_), "
                         f"got {priors!r}.")
    return p / p.sum()


def _adjusted_priors(log_post, train_prior):
    """mclust's classPriorProbs iteration from posteriors under the training priors."""
    z = np.exp(log_post)
    p = z.mean(axis=0)
    previous = p + 1.0
    for _ in range(_PRIOR_MAX_ITER):
        if not np.any(np.abs(p - previous) > _PRIOR_EPS * (1.0 + np.abs(p))):
            break
        previous = p
        upd = z * (p / train_prior)
        upd /= upd.sum(axis=1, keepdims=True)
        p = upd.mean(axis=0)
    return p


def _folds(codes, n_folds, folds, random_state):
    """Each row's fold: the given ids, or mclust-style class-balanced folds."""
    n = codes.shape[0]
    if folds is not None:
        fold = np.asarray(folds)
        if fold.shape != (n,) or not np.issubdtype(fold.dtype, np.integer):
            raise ValueError(f"folds must hold one integer fold id per row ({n}), got "
                             f"shape {fold.shape} of dtype {fold.dtype}.")
        return fold
    from ._validation import check_int, check_random_state

    n_folds = check_int(n_folds, "n_folds", minimum=2, maximum=n)
    if n_folds == n:
        return np.arange(n)
    rng = np.random.default_rng(check_random_state(random_state))
    fold = np.empty(n, dtype=np.intp)
    offset = 0
    for k in np.unique(codes):  # deal each class's shuffled rows round the folds
        rows = rng.permutation(np.flatnonzero(codes == k))
        fold[rows] = (offset + np.arange(rows.size)) % n_folds
        offset += rows.size
    return fold


def _weighted_mean_se(values, sizes):
    """cvMclustDA's fold-size-weighted mean and its standard error."""
    k = values.size
    mean = float((values * sizes).sum() / sizes.sum())
    var = ((values - mean) ** 2 * sizes).sum() / (sizes.sum() * (k - 1) / k)
    return mean, float(math.sqrt(var / k))


def _confusion(y, pred, classes):
    labels = [str(c) for c in classes]
    width = max(len(s) for s in labels + ["Class"]) + 1
    lines = ["Class".ljust(width) + " ".join(s.rjust(width) for s in labels)]
    for c, name in zip(classes, labels):
        counts = [int(np.sum((y == c) & (pred == p))) for p in classes]
        lines.append(name.ljust(width) + " ".join(str(v).rjust(width) for v in counts))
    return lines
