"""scikit-learn's closed-form covariance M-steps (full, tied, diag, spherical).

The M-steps of VVV, EEE, VVI and VII under scikit-learn's semantics: ``reg_covar`` added
to the estimated covariances, no failure on a singular scatter. They keep scikit-learn's
arithmetic bit for bit, so :class:`gaussmix.GaussianMixture` matches it.
Each takes ``(stats, nk, reg_covar, previous=None)`` and returns the covariances.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: the models package does not import the engine
    from .._engine.stats import SuffStats


def _add_to_diagonal(matrices, value):
    d = matrices.shape[-1]
    idx = np.arange(d)
    matrices[..., idx, idx] += value
    return matrices


def full_covariances(stats: SuffStats, nk, reg_covar, previous=None):
    """scikit-learn's "full": Sigma_k = W_k / n_k + reg I."""
    return _add_to_diagonal(stats.scatter / nk[:, None, None], reg_covar)


def tied_covariances(stats: SuffStats, nk, reg_covar, previous=None):
    """scikit-learn's "tied": Sigma = sum_k W_k / n + reg I."""
    return _add_to_diagonal(stats.scatter / nk.sum(), reg_covar)


def _rounding_floor(variances, stats: SuffStats):
    """Lift variances that rounded to zero up to the rounding level of the data.

    A component collapsed onto one point has a scatter known only to within rounding of
    the raw second moment; scikit-learn's E[x^2] - mu^2 lands there by accident. Only
    values <= 0 change, so every other fit is untouched.
    """
    level = 10 * np.finfo(np.float64).eps * stats.means**2
    return np.where(variances > 0, variances, level)


def diag_covariances(stats: SuffStats, nk, reg_covar, previous=None):
    """scikit-learn's "diag": sigma_kj^2 = W_kjj / n_k + reg."""
    return _rounding_floor(stats.scatter / nk[:, None], stats) + reg_covar


def spherical_covariances(stats: SuffStats, nk, reg_covar, previous=None):
    """scikit-learn's "spherical": the mean of the "diag" variances."""
    return diag_covariances(stats, nk, reg_covar).mean(axis=1)
