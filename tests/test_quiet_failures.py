"""Results that would mislead without a word: each is warned about or refused."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from gaussmix import GaussianMixture
from gaussmix.cli import main

REG_WARNING = "is large against the variance"


def _two_clusters_on_a_tiny_scale(seed=0):
    # The data: values near 5e-5 with a standard deviation of about 3e-6.
    rng = np.random.default_rng(seed)
    return np.r_[rng.normal(44e-6, 3e-6, 200), rng.normal(56e-6, 3e-6, 200)][:, None]


def _reg_warnings(record):
    return [str(w.message) for w in record if REG_WARNING in str(w.message)]


def test_reg_covar_swamping_tiny_variances_is_warned_with_the_fix():
    x = _two_clusters_on_a_tiny_scale()
    with pytest.warns(UserWarning, match=REG_WARNING) as record:
        gm = GaussianMixture(2, random_state=0).fit(x)
    # What the warning is about: reg_covar = 1e-6 made the two components one.
    assert np.allclose(gm.means_[0], gm.means_[1], rtol=1e-4)
    message = _reg_warnings(record)[0]
    assert "Scale the data" in message
    suggested = float(re.search(r"lower reg_covar \(e\.g\. reg_covar=([0-9.e+-]+);",
                                message).group(1))
    # The fix it names works, silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fixed = GaussianMixture(2, random_state=0, reg_covar=suggested).fit(x)
    assert abs(fixed.means_[0, 0] - fixed.means_[1, 0]) > 8e-6


@pytest.mark.parametrize("fraction, warned", [(0.02, True), (0.005, False)])
def test_reg_covar_is_warned_from_one_percent_of_a_variance(fraction, warned):
    iris = load_iris().data
    x = (iris - iris.mean(axis=0)) / iris.std(axis=0)  # every variance exactly 1
    x[:, 2] *= np.sqrt(1e-6 / fraction)  # reg_covar = fraction * variance of column 2
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        GaussianMixture(3, random_state=0).fit(x)
    found = _reg_warnings(record)
    assert bool(found) is warned
    if warned:
        assert "feature(s) x2 " in found[0]


def test_a_constant_column_is_not_a_reg_covar_warning():
    # reg_covar is what makes a constant column fit: nothing to warn about.
    x = np.c_[load_iris().data, np.full(150, 7.25)]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        GaussianMixture(3, random_state=0).fit(x)
    assert _reg_warnings(record) == []


def test_the_reg_covar_warning_names_the_columns():
    frame = pd.DataFrame({"height": load_iris().data[:, 0],
                          "conc": _two_clusters_on_a_tiny_scale()[:150, 0]})
    with pytest.warns(UserWarning, match=r"feature\(s\) conc \(smallest"):
        GaussianMixture(2, random_state=0).fit(frame)


def test_cli_fit_on_a_tiny_scale_prints_the_warning(tmp_path, capsys):
    path = tmp_path / "small.csv"
    path.write_text("conc\n" + "\n".join(f"{v:.4e}" for v in
                                         _two_clusters_on_a_tiny_scale()[:, 0]) + "\n")
    assert main(["fit", str(path), "-k", "2", "--seed", "0"]) == 0
    err = capsys.readouterr().err
    assert "gaussmix: warning: reg_covar=1e-06 is large against the variance of " \
           "feature(s) conc" in err
