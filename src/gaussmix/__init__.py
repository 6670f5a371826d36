"""gaussmix: Gaussian mixture models by expectation maximization.

One engine (E-step over chunks -> additive sufficient statistics -> M-step, one EM loop)
behind several faces: :class:`GaussianMixture`, a drop-in for scikit-learn's estimator;
:class:`Gauss` and :class:`Mixture`, the object model EM is taught with; :func:`select`,
R mclust's model selection by BIC; and the ``gaussmix`` command.

Everything a user needs is importable from here (``__all__``); the ``gaussmix._*``
modules are private and may change.
"""

import importlib

# Each public name -> the private module that defines it (and its name there). The
# modules are imported on first use (PEP 562), so ``import gaussmix`` and the command's
# ``--help`` do not pay for scikit-learn, SciPy, pandas or Numba until a name needs them.
_LAZY = {
    "DegenerateCovarianceError": "._errors",
    "FitError": "._errors",
    "NonFiniteLikelihoodError": "._errors",
    "VanishingComponentError": "._errors",
    "CovarianceModel": "._models.registry",
    "MstepResult": "._models.registry",
    "get_model": "._models.registry",
    "model_names": "._models.registry",
    "register_model": ("._models.registry", "register"),
    "unregister_model": ("._models.registry", "unregister"),
    "mclust_bic": "._models.mclust",
    "n_mclust_params": "._models.mclust",
    "Prior": "._models.prior",
    "PriorControl": "._models.prior",
    "default_prior": "._models.prior",
    "prior_control": "._models.prior",
    "EmptyComponentWarning": "._engine.loop",
    "DaskSource": "._engine.dask_source",
    "DeviceSource": "._engine.device",
    "ArraySource": "._engine.sources",
    "Sample": "._engine.sources",
    "Source": "._engine.sources",
    "GaussianMixture": "._estimator",
    "BayesianGaussianMixture": "._bayesian",
    "MixtureDiscriminant": "._discriminant",
    "CrossValidation": "._discriminant",
    "SemiSupervisedResult": "._mclust.semisupervised",
    "DataError": "._files.data",
    "ModelFileError": "._files.model_files",
    "load": "._files.model_files",
    "read_header": "._files.model_files",
    "save": "._files.model_files",
    "read_csv": "._files.sources",
    "read_npy": "._files.sources",
    "read_parquet": "._files.sources",
    "Gauss": "._mixture",
    "Mixture": "._mixture",
    "mclust_em": "._mclust.em",
    "hc": "._mclust.hc",
    "hclass": "._mclust.hc",
    "qclass": "._mclust.hc",
    "MclustFit": "._mclust.result",
    "MclustParams": "._mclust.result",
    "SelectionResult": "._mclust.select",
    "hypervolume": "._mclust.select",
    "select": "._mclust.select",
    "plot": (".plot", None),
}


def __getattr__(name):
    try:
        where = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'gaussmix' has no attribute {name!r}") from None
    module, attr = where if isinstance(where, tuple) else (where, name)
    value = importlib.import_module(module, __name__)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    # faces
    "GaussianMixture",
    "BayesianGaussianMixture",
    "Gauss",
    "Mixture",
    "select",
    "SelectionResult",
    "MixtureDiscriminant",
    "CrossValidation",
    "SemiSupervisedResult",
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
    "DeviceSource",
    "Sample",
    # failures and warnings
    "FitError",
    "DegenerateCovarianceError",
    "VanishingComponentError",
    "NonFiniteLikelihoodError",
    "EmptyComponentWarning",
    "__version__",
]
