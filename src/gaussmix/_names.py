"""Covariance model names, known without importing the models.

The command line lists them in ``--help``; importing the models would import NumPy and
SciPy first. :mod:`gaussmix._models.registry` takes its aliases from here.
"""

from __future__ import annotations

import sys

# scikit-learn's names for four of mclust's models.
ALIASES = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}
# mclust's multivariate models in mclust's order, then its univariate ones.
MCLUST_MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE",
                 "EEV", "VEV", "EVV", "VVV")
UNIVARIATE_MODELS = ("E", "V")
# The built-in models as model_names() lists them: scikit-learn's four first.
BUILTIN = tuple(ALIASES.values()) + tuple(
    m for m in MCLUST_MODELS + UNIVARIATE_MODELS if m not in ALIASES.values())


def model_names() -> list[str]:
    """The registered models' names, without importing the registry if it is not yet."""
    registry = sys.modules.get("gaussmix._models.registry")
    # Nothing can be registered before the registry is imported: the built-ins are all.
    return registry.model_names() if registry is not None else list(BUILTIN)


def covariance_names() -> list[str]:
    """Every name ``GaussianMixture(covariance_type=...)`` accepts, in the order listed."""
    return list(ALIASES) + [m for m in model_names() if m not in ALIASES]


def case_hint(name, allowed) -> str:
    """A sentence for an error: the allowed name ``name`` differs from only in case."""
    if isinstance(name, str):
        for candidate in allowed:
            if candidate.lower() == name.lower():
                return (f" Model names are case-sensitive (as in scikit-learn and "
                        f"mclust): did you mean {candidate!r}?")
    return ""
