"""scikit-learn's own BayesianGaussianMixture tests, run against
gaussmix.BayesianGaussianMixture (as test_sklearn_suite.py does for GaussianMixture).

The test functions are imported from the installed scikit-learn and find
``BayesianGaussianMixture`` in their module's namespace, which is pointed at ours here.
Tests of scikit-learn's private helpers are left out.
"""

import pytest

sk_tests = pytest.importorskip("sklearn.mixture.tests.test_bayesian_mixture")

from gaussmix import BayesianGaussianMixture  # noqa: E402

sk_tests.BayesianGaussianMixture = BayesianGaussianMixture

from sklearn.mixture.tests.test_bayesian_mixture import *  # noqa: E402,F401,F403

# Tests of scikit-learn's private functions (_log_dirichlet_norm, _log_wishart_norm)
# and of its private methods (test_compare_covar_type calls _check_parameters and
# _initialize; test_bayesian.py compares every covariance type with scikit-learn).
for _name in ["test_log_dirichlet_norm", "test_log_wishart_norm", "test_compare_covar_type"]:
    globals().pop(_name, None)
