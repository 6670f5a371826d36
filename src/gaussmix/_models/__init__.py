"""Covariance models: the registry, mclust's M-steps, the conjugate prior.

Importing the package registers every model: :mod:`.registry` holds the facts,
:mod:`.mclust` builds and registers the sixteen models (with the MAP steps of
:mod:`.prior` and scikit-learn's closed forms of :mod:`.sklearn_steps`, on the kernels
of :mod:`.numerics`).
"""

from . import registry, numerics, sklearn_steps, prior, mclust  # noqa: F401  (registers)
