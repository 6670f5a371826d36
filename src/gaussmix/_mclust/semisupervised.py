"""Semi-supervised model selection: mclust's ``MclustSSC`` behind ``select(X, y=...)``.

Rows with a known class keep responsibility 1 for its component; the others are
estimated. It is the engine's EM with fixed labels in the E-step kernel
(``thread_pass(labels=...)``), run with ``MclustSSC.fit``'s conventions:

* G = the number of classes (or the first given G that is at least that); component
  ``k < n_classes`` is class ``k``;
* the start: known rows one-hot, the others ``1 / G``; M-step first;
* each iteration's M-step starts afresh (mclust calls ``mstep`` without the previous
  state); the log-likelihood counts ``log pi_c f_c(x)`` for a known row of class c and
  ``log sum_k pi_k f_k(x)`` for the others;
* EM stops when the log-likelihood rises by at most ``tol`` (an absolute change);
* ``df = (G - 1) + d n_classes + nVarParams(model, d, n_classes)`` (mclust counts the
  covariances of the classes, not of G), ``BIC = 2 loglik - df log n``;
* the best model is the largest BIC, the last one on ties.
"""

from __future__ import annotations

import math

import numpy as np

from .._engine.init import given_stats, one_hot
from .._engine.loop import Policy, run_em
from .._engine.mstep import MStep
from .._engine.producers import thread_pass
from .._errors import FitError
from .._models.mclust import n_var_params
from .._models.numerics import MCLUST_MAX_ITER
from .._models.registry import get_model
from .result import MclustFit, MclustParams


def check_labels(y, n):
    """Class labels with unlabelled rows (-1, None or NaN): (codes, classes).

    ``codes`` is -1 for an unlabelled row, else the index of its class in ``classes``
    (the sorted distinct labels).
    """
    arr = np.asarray(y, dtype=object).ravel() if not isinstance(y, np.ndarray) else y
    if arr.shape != (n,):
        raise ValueError(f"y must hold one label per row of X ({n}), got shape "
                         f"{np.shape(y)}; mark unlabelled rows -1 (or None/NaN).")
    missing = np.array([_unlabelled(v) for v in arr], dtype=bool)
    known = arr[~missing]
    if known.size == 0:
        raise ValueError("y has no labelled row; for clustering alone call select(X) "
                         "without y.")
    try:
        classes, inverse = np.unique(known, return_inverse=True)
    except TypeError:
        raise ValueError("y mixes label types that cannot be ordered (e.g. numbers and "
                         "strings); use one type, -1 (or None) for unlabelled rows.") \
            from None
    codes = np.full(n, -1, dtype=np.intp)
    codes[~missing] = inverse
    return codes, classes


def _unlabelled(value):
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):  # -1.0: an integer column with NaN
        return math.isnan(value) or value == -1
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) \
        and value == -1


def absolute_rise_policy(tol: float) -> Policy:
    """MclustSSC's rule: go on while the log-likelihood rises by more than ``tol``."""
    trace = {"prev": -np.inf}

    def converged(stats, reseeded):
        change = stats.loglik - trace["prev"]
        trace["prev"] = stats.loglik
        return bool(not change > tol), stats.loglik, change

    return Policy(converged, reseed=False, require_finite=True)


def fit_semisupervised(source, name, G, codes, tol, max_iter) -> MclustFit:
    """One model of MclustSSC: EM with the labelled rows fixed (see module)."""
    model = get_model(name)
    kind = model.stats_kind

    def start(a, chunk):
        part = codes[a: a + chunk.shape[0]]
        z = np.full((part.shape[0], G), 1.0 / G)
        z[part >= 0] = one_hot(part[part >= 0], G)
        return z

    stats = given_stats(source, G, kind, start)
    mstep = MStep(model, strict=True, closed_form_single=False)
    result = run_em(thread_pass(source, kind, labels=codes),
                    lambda s, state: mstep(s, None), stats, absolute_rise_policy(tol),
                    max_iter=MCLUST_MAX_ITER if max_iter is None else max_iter)
    params = MclustParams.of(result.params, model.name, result.state)
    fit = MclustFit(params, result.loglik, result.n_iter, result.converged,
                    tuple(result.log_likelihoods), result.stats.map_loglik, model.name,
                    result.stats)
    fit.z = _fixed_responsibilities(source, params, codes)
    return fit


def _fixed_responsibilities(source, params, codes):
    from .em import responsibilities

    z = responsibilities(source, params)
    known = codes >= 0
    z[known] = one_hot(codes[known], z.shape[1])
    return z


def select_semisupervised(source, X, y, G, models, tol, max_iter, column_names,
                          feature_names):
    """``select(X, y=...)``: the BIC of every model at one G, the best fit (MclustSSC)."""
    import pandas as pd

    n, d = source.n_rows, source.n_features
    codes, classes = check_labels(y, n)
    n_classes = classes.size
    if G is None:
        G = n_classes
    Gs = [G] if np.isscalar(G) else sorted(int(g) for g in G)
    if not Gs or min(Gs) < n_classes:
        raise ValueError(f"G cannot be smaller than the number of classes in y "
                         f"({n_classes}); give G >= {n_classes}, or None.")
    G = int(Gs[0])  # mclust's G[G >= nclass][1]
    if n <= d and d > 1:  # as mclust: no full covariances from too few rows
        models = [m for m in models if m not in ("EEE", "EEV", "VEV", "VVV")]
    bic = np.full(len(models), np.nan)
    loglik = np.full(len(models), np.nan)
    icl = np.full(len(models), np.nan)
    n_iter = np.zeros(len(models), dtype=np.int64)
    best = None
    for i, name in enumerate(models):
        try:
            fit = fit_semisupervised(source, name, G, codes, tol, max_iter)
        except (FitError, np.linalg.LinAlgError):
            continue  # mclust's NA
        df = (G - 1) + d * n_classes + n_var_params(name, n_classes, d)
        bic[i] = 2.0 * fit.loglik - df * math.log(n)
        icl[i] = bic[i] + 2.0 * fit.map_loglik
        loglik[i], n_iter[i] = fit.loglik, fit.n_iter
        if best is None or bic[i] >= bic[best[0]]:
            best = (i, fit, df)
    frames = [pd.DataFrame(v[None, :], index=pd.Index([G], name="G"),
                           columns=pd.Index(models, name="model"))
              for v in (bic, icl, loglik, n_iter)]
    if best is None:
        raise FitError("None of the models could be fitted to the labelled and "
                       "unlabelled rows; try other models.")
    i, fit, df = best
    names = [str(c) for c in classes] + [f"class{k + 1}" for k in range(n_classes, G)]
    return SemiSupervisedResult(frames, models[i], G, fit, df, classes, names, codes,
                                feature_names)


class SemiSupervisedResult:
    """What ``select(X, y=...)`` found (mclust's ``MclustSSC``).

    The attributes of a :class:`SelectionResult` that a semi-supervised fit has (one
    row of G), plus the classes.

    Attributes
    ----------
    bic, icl, loglik_table, n_iter : pandas.DataFrame
        Index G (one value), one column per model; NaN where the fit failed.
    best_model : str
    best_G : int
    loglik, df, bic_value, icl_value : float
        The best fit's log-likelihood, mclust's df, BIC and ICL.
    params : MclustParams
        The last M-step's parameters (as mclust returns them).
    best : GaussianMixture
        The best fit as a fitted :class:`gaussmix.GaussianMixture`.
    z : ndarray of shape (n, G)
        Responsibilities; a labelled row's is 1 for its class.
    classification : ndarray of int of shape (n,)
        Most probable component of each row (labelled rows keep theirs).
    uncertainty : ndarray of shape (n,)
    classes : ndarray
        The distinct labels of y; component ``k < len(classes)`` is ``classes[k]``.
    component_names : list of str
        Each component's name: its class, then ``class<k>`` for components beyond the
        classes (1-based, as mclust).
    predicted_labels : ndarray of object of shape (n,)
        Each row's component by name.
    n, d : int
    """

    def __init__(self, frames, model, G, fit, df, classes, component_names, codes,
                 feature_names):
        from .._estimator import GaussianMixture, set_fitted

        self.bic, self.icl, self.loglik_table, self.n_iter = frames
        self.best_model, self.best_G = model, int(G)
        self.loglik, self.df = float(fit.loglik), int(df)
        self.bic_value = float(self.bic.iat[0, list(self.bic.columns).index(model)])
        self.icl_value = float(self.icl.iat[0, list(self.icl.columns).index(model)])
        self.params = fit.params
        self.z = fit.z
        self.classification = np.argmax(self.z, axis=1)
        self.uncertainty = 1.0 - self.z.max(axis=1)
        self.classes, self.component_names = classes, component_names
        self._codes = codes
        self.n, self.d = self.z.shape[0], fit.params.means.shape[1]
        mean = self.loglik / self.n
        self.best = set_fitted(GaussianMixture(n_components=self.best_G,
                                               covariance_type=model),
                               fit.params, n_features=self.d, converged=fit.converged,
                               n_iter=fit.n_iter, lower_bound=mean, lower_bounds=[mean],
                               feature_names=feature_names)

    @property
    def predicted_labels(self):
        return np.asarray(self.component_names, dtype=object)[self.classification]

    def __repr__(self) -> str:
        return (f"<SemiSupervisedResult best=({self.best_model},{self.best_G}) "
                f"BIC={self.bic_value:.4f} n={self.n} d={self.d} "
                f"labelled={int((self._codes >= 0).sum())}>")

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        """A report in the spirit of mclust's ``summary(MclustSSC)``."""
        title = "Gaussian finite mixture model for semi-supervised classification"
        lines = ["-" * len(title), title, "-" * len(title), ""]
        head = ["log-likelihood", "n", "df", "BIC"]
        vals = [f"{self.loglik:.4f}", str(self.n), str(self.df), f"{self.bic_value:.4f}"]
        widths = [max(len(a), len(b)) for a, b in zip(head, vals)]
        lines.append(" ".join(h.rjust(w) for h, w in zip(head, widths)))
        lines.append(" ".join(v.rjust(w) for v, w in zip(vals, widths)))
        lines += ["", f"Model {self.best_model} with G = {self.best_G}", "",
                  "Classes   n  (labelled rows)"]
        counts = np.bincount(self._codes[self._codes >= 0], minlength=self.best_G)
        for name, c in zip(self.component_names, counts):
            lines.append(f"{name:<9} {c}")
        lines.append(f"{'<NA>':<9} {int((self._codes < 0).sum())}")
        lines += ["", "Classification (rows: given label, columns: predicted):"]
        given = ["<NA>" if c < 0 else self.component_names[c] for c in self._codes]
        pred = self.predicted_labels
        cols = list(self.component_names)
        rows = [n for n in cols if n in given] + (["<NA>"] if "<NA>" in given else [])
        width = max(len(s) for s in cols + rows + ["Class"]) + 1
        lines.append("Class".ljust(width) + " ".join(c.rjust(width) for c in cols))
        given = np.asarray(given, dtype=object)
        for r in rows:
            cnt = [int(np.sum((given == r) & (pred == c))) for c in cols]
            lines.append(r.ljust(width) + " ".join(str(v).rjust(width) for v in cnt))
        return "\n".join(lines)
