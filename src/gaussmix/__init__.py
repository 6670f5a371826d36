"""gaussmix: Gaussian mixture models by expectation maximization.

One engine (E-step over chunks -> additive sufficient statistics -> M-step) behind
several faces: :class:`GaussianMixture`, a drop-in for scikit-learn's estimator.
"""

from ._covariance import get_model, model_names
from ._em import EmptyComponentWarning
from ._estimator import GaussianMixture

__version__ = "0.1.0"

__all__ = [
    "EmptyComponentWarning",
    "GaussianMixture",
    "get_model",
    "model_names",
    "__version__",
]
