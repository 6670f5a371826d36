"""Immutable mixture parameters and the precision factors the E-step needs.

Covariances come in one of four layouts, named after the E-step family that reads them
(scikit-learn's shapes):

==========  =====================  =========================================
family      ``covariances`` shape  ``precisions_cholesky`` shape
==========  =====================  =========================================
full        (K, D, D)              (K, D, D), upper triangular, P = U U^T
tied        (D, D)                 (D, D)
diag        (K, D)                 (K, D)
spherical   (K,)                   (K,)
==========  =====================  =========================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import linalg

from .._errors import ILL_DEFINED_COVARIANCE, DegenerateCovarianceError

LOG_2PI = math.log(2.0 * math.pi)

FAMILIES = ("full", "tied", "diag", "spherical")



@dataclass(frozen=True)
class Params:
    """Mixture parameters: weights, means, covariances and their precision factors.

    Build with :func:`params_from_covariances` or :func:`params_from_precisions`, which
    validate and precompute what the E-step needs; never mutate the arrays.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    log_det_cholesky: np.ndarray  # (K,): log det of each component's precision factor
    family: str
    # mclust's uniform noise component: its log-density (log 1 / hypervolume) and its
    # proportion; the Gaussian weights then sum to 1 - noise_proportion. None: no noise.
    noise_log_density: float | None = None
    noise_proportion: float = 0.0
    # The E-step's log-weights when they are not log(weights): variational Bayes's
    # expected log-weights with its log-determinant corrections (see .variational).
    log_weights: np.ndarray | None = None

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def n_features(self) -> int:
        return self.means.shape[1]

    def full_covariances(self) -> np.ndarray:
        """Covariances as (K, D, D) matrices, whatever the family."""
        return full_covariances(self.covariances, self.family, *self.means.shape)

    def precisions(self) -> np.ndarray:
        """Precision matrices (or vectors) in the family's layout."""
        pc = self.precisions_cholesky
        if self.family == "full":
            return pc @ np.swapaxes(pc, -1, -2)
        if self.family == "tied":
            return pc @ pc.T
        return pc**2


def full_covariances(covariances, family, n_components, n_features) -> np.ndarray:
    """Covariances in a family's layout as a new (K, D, D) array."""
    cov = np.asarray(covariances, dtype=np.float64)
    if family == "full":
        return cov.copy()
    if family == "tied":
        return np.repeat(cov[None], n_components, axis=0)
    if family == "diag":
        return cov[:, :, None] * np.eye(n_features)[None]
    return cov[:, None, None] * np.eye(n_features)[None]


def _log_det_cholesky(prec_chol, family, n_components, n_features):
    if family == "full":
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)
    if family == "tied":
        return np.full(n_components, np.log(np.diag(prec_chol)).sum())
    if family == "diag":
        return np.log(prec_chol).sum(axis=1)
    return n_features * np.log(prec_chol)


def _precision_cholesky(covariances, family, error_hint=""):
    message = ILL_DEFINED_COVARIANCE + error_hint
    if family in ("full", "tied"):
        stacked = covariances if family == "full" else covariances[None]
        if not np.all(np.isfinite(stacked)):
            raise DegenerateCovarianceError(message)
        # Batched NumPy rather than SciPy per component: one call for all K, and no
        # per-call thread-pool start-up on tiny matrices.
        try:
            cov_chol = np.linalg.cholesky(stacked)
        except np.linalg.LinAlgError:
            raise DegenerateCovarianceError(message) from None
        eye = np.broadcast_to(np.eye(stacked.shape[-1]), stacked.shape)
        # The inverse of a lower-triangular factor is lower triangular; LU's pivoting
        # can leave rounding residue above the diagonal, so zero it exactly.
        out = np.triu(np.swapaxes(np.linalg.solve(cov_chol, eye), -1, -2))
        return out if family == "full" else out[0]
    if np.any(covariances <= 0.0) or not np.all(np.isfinite(covariances)):
        raise DegenerateCovarianceError(message)
    return 1.0 / np.sqrt(covariances)


def make_params(weights, means, covariances, precisions_cholesky, family) -> Params:
    """Parameters from all their parts; only the log-determinants are derived."""
    n_components, n_features = means.shape
    return Params(
        weights=np.asarray(weights, dtype=np.float64),
        means=np.asarray(means, dtype=np.float64),
        covariances=covariances,
        precisions_cholesky=precisions_cholesky,
        log_det_cholesky=_log_det_cholesky(precisions_cholesky, family, n_components,
                                           n_features),
        family=family,
    )


def params_from_covariances(weights, means, covariances, family, error_hint="") -> Params:
    """Parameters from covariances; raises ValueError if one is not positive definite."""
    weights = np.asarray(weights, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    covariances = np.asarray(covariances, dtype=np.float64)
    prec_chol = _precision_cholesky(covariances, family, error_hint)
    return make_params(weights, means, covariances, prec_chol, family)


def _flip(a):
    return a[..., ::-1, ::-1]


def params_from_precisions(weights, means, precisions, family) -> Params:
    """Parameters from precision matrices (e.g. scikit-learn's ``precisions_init``).

    The upper-triangular factor U with P = U U^T is the flipped lower Cholesky factor of
    the flipped precision, as scikit-learn computes it.
    """
    weights = np.asarray(weights, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    precisions = np.asarray(precisions, dtype=np.float64)
    if family in ("full", "tied"):
        stacked = precisions if family == "full" else precisions[None]
        chol = np.stack([_flip(linalg.cholesky(_flip(p), lower=True)) for p in stacked])
        covs = np.stack([linalg.inv(p) for p in stacked])
        prec_chol, covariances = (chol, covs) if family == "full" else (chol[0], covs[0])
    else:
        prec_chol = np.sqrt(precisions)
        covariances = 1.0 / precisions
    return make_params(weights, means, covariances, prec_chol, family)


def inverse_factors(prec_chol):
    """``U_k^{-1}`` of each upper-triangular precision factor (LAPACK trtri)."""
    from scipy.linalg.lapack import dtrtri

    out = np.empty_like(prec_chol)
    for k, u in enumerate(prec_chol):
        inv, info = dtrtri(u, lower=0)
        if info != 0:
            raise np.linalg.LinAlgError("singular precision factor")
        out[k] = inv
    return out
