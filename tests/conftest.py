import os
import sys

sys.path.insert(0, os.path.dirname(__file__))  # tests share reference_em.py

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest


# Fixtures scikit-learn's own tests take from its conftest (test_sklearn_suite*.py run
# them): float64 only, and its default seed.
@pytest.fixture(params=[np.float64])
def global_dtype(request):
    return request.param


@pytest.fixture
def global_random_seed():
    return 42


# A cold Numba cache (a fresh CI machine) must not change what select runs during the
# suite: compile in the call, as before (tests/test_first_run.py covers the background).
os.environ.setdefault("GAUSSMIX_BACKGROUND_COMPILE", "0")
