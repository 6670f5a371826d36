"""Covariance models: the registry, mclust's M-steps, the conjugate prior."""
