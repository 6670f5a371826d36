"""Covariance models: one object each, found by name in one registry.

A model knows which E-step family reads its covariances, which scatter layout its
M-step needs, how many free parameters it has, and how to turn sufficient statistics
into covariances. mclust's names are canonical; scikit-learn's are aliases
(full = VVV, tied = EEE, diag = VVI, spherical = VII).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .._engine.stats import SuffStats


@dataclass(frozen=True)
class CovarianceModel:
    """A covariance parametrisation of a Gaussian mixture.

    Attributes
    ----------
    name : str
        mclust's name, e.g. ``"VVV"``.
    family : {"full", "tied", "diag", "spherical"}
        Layout of the covariances and the E-step kernel that reads them.
    stats_kind : {"full", "diag", "tied"}
        Scatter layout the M-step needs (see :mod:`gaussmix._engine.stats`).
    n_cov_parameters : callable (K, D) -> int
        Free parameters in the covariances.
    estimate : callable (stats, nk, reg_covar, previous) -> covariances
        The covariance M-step. ``nk`` are the (eps-guarded) component counts;
        ``previous`` the current covariances, for iterative M-steps, or None.
    """

    name: str
    family: str
    stats_kind: str
    n_cov_parameters: Callable[[int, int], int]
    estimate: Callable[..., np.ndarray]
    description: str = ""


_REGISTRY: dict[str, CovarianceModel] = {}
ALIASES = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}


def register(model: CovarianceModel) -> CovarianceModel:
    """Add a model to the registry (overwrites one of the same name)."""
    _REGISTRY[model.name] = model
    return model


def get_model(name: str) -> CovarianceModel:
    """The model called ``name`` (mclust's name or a scikit-learn alias)."""
    key = ALIASES.get(name, name)
    try:
        return _REGISTRY[key]
    except KeyError:
        known = sorted(set(_REGISTRY) | set(ALIASES))
        raise ValueError(
            f"Unknown covariance model {name!r}; use one of {', '.join(known)}."
        ) from None


def model_names() -> list[str]:
    """Names of the registered models (canonical names only)."""
    return list(_REGISTRY)


def _add_to_diagonal(matrices, value):
    d = matrices.shape[-1]
    idx = np.arange(d)
    matrices[..., idx, idx] += value
    return matrices


def _estimate_vvv(stats: SuffStats, nk, reg_covar, previous=None):
    return _add_to_diagonal(stats.scatter / nk[:, None, None], reg_covar)


def _estimate_eee(stats: SuffStats, nk, reg_covar, previous=None):
    return _add_to_diagonal(stats.scatter / nk.sum(), reg_covar)


def _rounding_floor(variances, stats: SuffStats):
    """Lift variances that rounded to zero up to the rounding level of the data.

    A component collapsed onto one point has a scatter known only to within rounding of
    the raw second moment; scikit-learn's E[x^2] - mu^2 lands there by accident. Only
    values <= 0 change, so every other fit is untouched.
    """
    level = 10 * np.finfo(np.float64).eps * stats.means**2
    return np.where(variances > 0, variances, level)


def _estimate_vvi(stats: SuffStats, nk, reg_covar, previous=None):
    return _rounding_floor(stats.scatter / nk[:, None], stats) + reg_covar


def _estimate_vii(stats: SuffStats, nk, reg_covar, previous=None):
    return _estimate_vvi(stats, nk, reg_covar).mean(axis=1)


register(CovarianceModel(
    "VVV", "full", "full", lambda k, d: k * d * (d + 1) // 2, _estimate_vvv,
    "ellipsoidal, varying volume, shape and orientation (scikit-learn 'full')",
))
register(CovarianceModel(
    "EEE", "tied", "tied", lambda k, d: d * (d + 1) // 2, _estimate_eee,
    "ellipsoidal, equal volume, shape and orientation (scikit-learn 'tied')",
))
register(CovarianceModel(
    "VVI", "diag", "diag", lambda k, d: k * d, _estimate_vvi,
    "diagonal, varying volume and shape (scikit-learn 'diag')",
))
register(CovarianceModel(
    "VII", "spherical", "diag", lambda k, d: k, _estimate_vii,
    "spherical, varying volume (scikit-learn 'spherical')",
))

from . import mclust as _mclust_models  # noqa: E402,F401  registers mclust's models
