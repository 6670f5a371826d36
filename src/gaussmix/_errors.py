"""Typed fit failures: raised by the M-steps and the loop, mapped by each face.

A face decides what a failure means: :class:`gaussmix.GaussianMixture` lets it propagate
(it is a ``ValueError`` with scikit-learn's message, as scikit-learn raises), while
:func:`gaussmix.select` turns it into a NaN cell of its BIC table, as mclust reports NA.
Nothing matches message text to tell a failure from a bug.
"""

from __future__ import annotations

# scikit-learn's words for a covariance that cannot be estimated (its users match them).
ILL_DEFINED_COVARIANCE = (
    "Fitting the mixture model failed because some components have "
    "ill-defined empirical covariance (for instance caused by singleton "
    "or collapsed samples). Try to decrease the number of components, "
    "increase reg_covar, or scale the input data."
)


class FitError(ValueError):
    """The model cannot be fitted to these data from this start.

    Subclasses say why. It is a ``ValueError``, scikit-learn's error for a mixture whose
    covariances cannot be estimated.
    """


class DegenerateCovarianceError(FitError):
    """A covariance is singular, not positive definite or not finite."""


class VanishingComponentError(FitError):
    """A component's weight fell below the threshold at which it can be estimated."""


class NonFiniteLikelihoodError(FitError):
    """The log-likelihood of the data is not finite under the current parameters."""


# The file errors live here, not beside their readers, so the command can catch them
# without importing NumPy (its --help stays fast).
class DataError(ValueError):
    """A data file cannot be used: the message names the file and says why."""


class ModelFileError(ValueError):
    """A model file is unreadable, corrupted, tampered with, or of an unknown version.

    The message names the file and the problem.
    """
