"""gaussmix: Gaussian mixture models by expectation maximization.

One engine (E-step over chunks -> additive sufficient statistics -> M-step, one EM loop)
behind several faces: :class:`GaussianMixture`, a drop-in for scikit-learn's estimator;
:class:`Gauss` and :class:`Mixture`, the object model EM is taught with; :func:`select`,
R mclust's model selection by BIC; and the ``gaussmix`` command.

Everything a user needs is importable from here (``__all__``); the ``gaussmix._*``
modules are private and may change.
"""

from ._errors import (DegenerateCovarianceError, FitError, NonFiniteLikelihoodError,
                      VanishingComponentError)
from ._models.registry import (CovarianceModel, MstepResult, get_model, model_names,
                               register as register_model,
                               unregister as unregister_model)
from ._models.mclust import mclust_bic, n_mclust_params
from ._models.prior import Prior, PriorControl, default_prior, prior_control
from ._engine.loop import EmptyComponentWarning
from ._engine.dask_source import DaskSource
from ._engine.sources import ArraySource, Sample, Source
from ._estimator import GaussianMixture
from ._bayesian import BayesianGaussianMixture
from ._files.data import DataError
from ._files.model_files import ModelFileError, load, read_header, save
from ._files.sources import read_csv, read_npy, read_parquet
from ._mixture import Gauss, Mixture
from ._mclust.em import mclust_em
from ._mclust.hc import hc, hclass, qclass
from ._mclust.result import MclustFit, MclustParams
from ._mclust.select import SelectionResult, hypervolume, select
from . import plot

__version__ = "0.1.0"

__all__ = [
    # faces
    "GaussianMixture",
    "BayesianGaussianMixture",
    "Gauss",
    "Mixture",
    "select",
    "SelectionResult",
    "plot",
    # model files
    "save",
    "load",
    "read_header",
    "ModelFileError",
    # covariance models: the registry
    "CovarianceModel",
    "MstepResult",
    "get_model",
    "model_names",
    "register_model",
    "unregister_model",
    # mclust's building blocks
    "mclust_em",
    "MclustFit",
    "MclustParams",
    "mclust_bic",
    "n_mclust_params",
    "hc",
    "hclass",
    "qclass",
    "hypervolume",
    "prior_control",
    "PriorControl",
    "Prior",
    "default_prior",
    # data sources: files streamed in chunks, arrays
    "read_npy",
    "read_parquet",
    "read_csv",
    "DataError",
    "Source",
    "ArraySource",
    "DaskSource",
    "Sample",
    # failures and warnings
    "FitError",
    "DegenerateCovarianceError",
    "VanishingComponentError",
    "NonFiniteLikelihoodError",
    "EmptyComponentWarning",
    "__version__",
]
