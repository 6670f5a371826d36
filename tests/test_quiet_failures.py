"""Results that would mislead without a word: each is warned about or refused."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

import gaussmix
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


# ------------------------------------------------------------------ constant columns
def _iris_with_a_constant_column():
    frame = load_iris(as_frame=True).data
    frame.insert(1, "flat", 2.5)
    return frame


def test_select_names_constant_columns_in_its_warning_and_summary():
    frame = _iris_with_a_constant_column()
    with pytest.warns(UserWarning, match=r"1 constant column\(s\) \(flat\)") as record:
        result = gaussmix.select(frame, G=[1, 2], models=["EII", "VVI", "VVV"], n_jobs=1)
    failed = int(result.bic.isna().to_numpy().sum())
    assert failed > 0  # what the note explains: the per-column variances cannot be fitted
    note = f"({failed} of 6 cells failed, NaN). Drop the constant columns, or pass a prior."
    assert note in str(record[0].message)
    assert result.constant_columns == ["flat"]
    assert result.summary().endswith(note)


def test_select_names_constant_columns_of_an_array_by_index():
    x = np.c_[load_iris().data, np.zeros(150)]
    with pytest.warns(UserWarning, match=r"1 constant column\(s\) \(4\)"):
        result = gaussmix.select(x, G=[1, 2], models=["EII", "VVV"], n_jobs=1)
    assert result.constant_columns == ["4"]
    # Only spherical models, which pool the variance over the columns: none fails.
    with pytest.warns(UserWarning, match=r"\(none of the 2 cells failed\)"):
        result = gaussmix.select(x, G=[1, 2], models=["EII"], n_jobs=1)
    assert result.constant_columns == ["4"]


def test_select_without_constant_columns_says_nothing_of_them():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = gaussmix.select(load_iris().data, G=[1, 2], models=["EII"], n_jobs=1)
    assert result.constant_columns == []
    assert "constant" not in result.summary()


def test_cli_select_names_the_constant_column(tmp_path, capsys):
    path = tmp_path / "iris_flat.csv"
    _iris_with_a_constant_column().to_csv(path, index=False)
    assert main(["select", str(path), "-G", "1:2", "-m", "EII,VVV"]) == 0
    captured = capsys.readouterr()
    assert "gaussmix: warning: The data have 1 constant column(s) (flat)" in captured.err
    assert "1 constant column(s) (flat)" in captured.out  # the summary


# ------------------------------------------------------------------ model names
ORDERED = ("'full', 'tied', 'diag', 'spherical', 'VVV', 'EEE', 'VVI', 'VII', 'EII', 'EEI', "
           "'VEI', 'EVI', 'VEE', 'EVE', 'VVE', 'EEV', 'VEV', 'EVV', 'E', 'V'")


@pytest.mark.parametrize("given, meant", [("vev", "VEV"), ("FULL", "full")])
def test_covariance_type_is_case_sensitive_with_a_hint(given, meant):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError) as info:
        GaussianMixture(2, covariance_type=given).fit(load_iris().data)
    # scikit-learn's message (its own tests match it), the names in order, and the hint.
    assert str(info.value) == (
        f"The 'covariance_type' parameter of GaussianMixture must be a str among "
        f"{{{ORDERED}}}. Got {given!r} instead. Model names are case-sensitive (as in "
        f"scikit-learn and mclust): did you mean {meant!r}?")


def test_an_unknown_covariance_type_lists_the_names_without_a_hint():
    with pytest.raises(ValueError, match=r"Got 'xyz' instead\.$"):
        GaussianMixture(2, covariance_type="xyz").fit(load_iris().data)
    with pytest.raises(ValueError, match=r"use one of full, tied, diag, spherical, VVV, "
                                         r"EEE, .* E, V\. Model names are case-sens"):
        gaussmix.get_model("vvv")


def test_select_models_are_case_sensitive_with_the_same_hint():
    with pytest.raises(ValueError) as info:
        gaussmix.select(load_iris().data, G=[2], models=["vvv"])
    assert str(info.value) == (
        "Unknown mclust model 'vvv'; use EII, VII, EEI, VEI, EVI, VVI, EEE, VEE, EVE, VVE, "
        "EEV, VEV, EVV, VVV (or E, V for 1-D data), or a model registered with an "
        "mstep. Model names are case-sensitive (as in scikit-learn and mclust): did you "
        "mean 'VVV'?")


def test_select_on_one_dimension_says_how_it_maps_the_models():
    x = load_iris().data[:, 2]
    with pytest.warns(UserWarning, match=r"one-dimensional: model\(s\) VVV mean V there"):
        result = gaussmix.select(x, G=[1, 2], models=["VVV"], n_jobs=1)
    assert list(result.bic.columns) == ["V"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asked for directly: nothing to say
        assert list(gaussmix.select(x, G=[1, 2], models=["V"], n_jobs=1)
                    .bic.columns) == ["V"]


def test_cli_select_refuses_a_lower_case_model(tmp_path, capsys):
    path = tmp_path / "iris.csv"
    load_iris(as_frame=True).data.to_csv(path, index=False)
    assert main(["select", str(path), "-G", "2", "-m", "vvv"]) == 1
    assert "did you mean 'VVV'?" in capsys.readouterr().err


def test_cli_select_on_one_column_says_how_it_maps_the_models(tmp_path, capsys):
    path = tmp_path / "petal.csv"
    load_iris(as_frame=True).data[["petal length (cm)"]].to_csv(path, index=False)
    assert main(["select", str(path), "-G", "1:2", "-m", "VVV"]) == 0
    assert "gaussmix: warning: The data are one-dimensional: model(s) VVV mean V" \
        in capsys.readouterr().err
