"""scikit-learn's own GaussianMixture tests, run against gaussmix.GaussianMixture.

The test functions are imported from the installed scikit-learn and find
``GaussianMixture`` in their module's namespace, which is pointed at ours here. Tests of
scikit-learn's private helpers are left out; its array-API compliance test runs in
tests/test_array_api.py (with the namespaces installed there).
"""

import pytest

sk_tests = pytest.importorskip("sklearn.mixture.tests.test_gaussian_mixture")

from gaussmix import GaussianMixture  # noqa: E402

sk_tests.GaussianMixture = GaussianMixture

from sklearn.mixture.tests.test_gaussian_mixture import *  # noqa: E402,F401,F403

# Tests of scikit-learn internals: they call private methods (_initialize,
# _set_parameters) or mock private module functions. Array API: the compliance test
# runs in tests/test_array_api.py; the one expecting some inits to be refused does not
# apply (every init runs on a device here).
for _name in [
    "test_gaussian_mixture_precisions_init",
    "test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters",
    "test_gaussian_mixture_array_api_compliance",
    "test_gaussian_mixture_raises_where_array_api_not_implemented",
    "test_suffstat_sk_full",
    "test_suffstat_sk_tied",
    "test_suffstat_sk_diag",
    "test_gaussian_suffstat_sk_spherical",
    "test_compute_log_det_cholesky",
    "test_gaussian_mixture_log_probabilities",
    "test_gaussian_mixture_estimate_log_prob_resp",
]:
    globals().pop(_name, None)
