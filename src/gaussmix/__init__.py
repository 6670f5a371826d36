"""gaussmix: Gaussian mixture models by expectation maximization.

One engine (E-step over chunks -> additive sufficient statistics -> M-step) behind
several faces: :class:`GaussianMixture`, a drop-in for scikit-learn's estimator.
"""

from ._models.registry import get_model, model_names
from ._engine.loop import EmptyComponentWarning
from ._estimator import GaussianMixture
from ._files.model_files import ModelFileError, load, save
from ._mixture import Gauss, Mixture
from ._mclust.select import select
from . import plot

__version__ = "0.1.0"

__all__ = [
    "EmptyComponentWarning",
    "Gauss",
    "GaussianMixture",
    "Mixture",
    "get_model",
    "model_names",
    "plot",
    "ModelFileError",
    "load",
    "save",
    "select",
    "__version__",
]
