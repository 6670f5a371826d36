"""Model selection against R's mclust 6.0.0, number for number.

References: the BIC / ICL tables, best models, classifications and uncertainties that
mclust computed on iris and faithful (tests/data/mclust_reference) and on the data
in tests/data/mclust_extra (see its README for the R commands). R is not needed.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gaussmix
from gaussmix._mclust.em import compiled_available
from gaussmix._mclust.select import SelectionResult, hypervolume, select

from mclust_reference import MCLUST_REFERENCE

EXTRA = Path(__file__).parent / "data" / "mclust_extra"
BIC_TOL = 0.01  # acceptance: every cell within 0.01 of mclust's


def _shared(name):
    return MCLUST_REFERENCE / name


def _extra_data(name):
    X = pd.read_csv(EXTRA / f"{name}.csv").to_numpy(dtype=float)
    kwargs = {}
    if name == "big2d":
        kwargs["subset"] = pd.read_csv(EXTRA / "big2d_subset.csv")["row"].to_numpy() - 1
    if name == "noise2d":
        kwargs["noise"] = pd.read_csv(EXTRA / "noise2d_noise_rows.csv")["row"].to_numpy() - 1
    return X, kwargs


_CACHE = {}


def _result(name):
    """One select per data set for the whole module (the grid is the costly part)."""
    if name not in _CACHE:
        if name in ("iris", "faithful"):
            X = pd.read_csv(_shared(f"{name}.csv")).select_dtypes("number")
            _CACHE[name] = (X.to_numpy(), select(X))
        elif name == "diabetes_prior":
            X, _ = _extra_data("diabetes")
            _CACHE[name] = (X, select(X, prior=True))
        else:
            X, kwargs = _extra_data(name)
            _CACHE[name] = (X, select(X, **kwargs))
    return _CACHE[name]


def _assert_table(ours, ref, tol=BIC_TOL, skip=()):
    assert list(ours.columns) == list(ref.columns)
    assert list(ours.index) == [int(g) for g in ref.index]
    a, b = ours.to_numpy(), ref.to_numpy()
    mask = np.ones(a.shape, dtype=bool)
    for g, m in skip:
        mask[list(ours.index).index(g), list(ours.columns).index(m)] = False
    np.testing.assert_array_equal(np.isnan(a)[mask], np.isnan(b)[mask])
    both = mask & ~np.isnan(b)
    np.testing.assert_allclose(a[both], b[both], rtol=0, atol=tol)


# ---------------------------------------------------------------- the acceptance tables
@pytest.mark.parametrize("name, model, G, bic", [
    ("iris", "VEV", 2, -561.7284621151),
    ("faithful", "EEE", 3, -2314.3162956658),
])
def test_bic_table_and_choice_equal_mclust(name, model, G, bic):
    _, result = _result(name)
    ref = pd.read_csv(_shared(f"{name}_BIC_SVD.csv"), index_col=0)
    _assert_table(result.bic, ref)
    assert (result.best_model, result.best_G) == (model, G)
    assert result.bic_value == pytest.approx(bic, abs=1e-4)


@pytest.mark.parametrize("name", ["iris", "faithful"])
def test_loglik_table_equal_mclust(name):
    _, result = _result(name)
    ref = pd.read_csv(_shared(f"{name}_loglik_SVD.csv"), index_col=0)
    _assert_table(result.loglik_table, ref, tol=0.005)


@pytest.mark.parametrize("name, loglik, df, icl", [
    ("iris", -215.7259722343, 26, -561.7288756511),
    ("faithful", -1126.3262364683, 11, -2357.8242489548),
])
def test_best_model_summary_numbers(name, loglik, df, icl):
    _, result = _result(name)
    assert result.loglik == pytest.approx(loglik, abs=1e-6)
    assert result.df == df
    assert result.icl_value == pytest.approx(icl, abs=1e-4)


# ------------------------------------------------------------ data it was not tuned on
EXTRA_CASES = ["diabetes", "banknote", "mix3d", "mix1d", "big2d", "noise2d",
               "diabetes_prior", "wide"]
# banknote G = 9 starts a component on 5 rows in 6 dimensions: its scatter is singular
# in exact arithmetic, and whether a Cholesky factorisation notices is up to rounding.
# mclust's Fortran VEE fails at its first M-step there (NA), and so does the compiled
# EM (gaussmix._mclust.fast_em, used when Numba is installed); the NumPy path's statistics
# round the other way and it fits the model (README).
_COMPILED = compiled_available()
KNOWN = {} if _COMPILED else {"banknote": [(9, "VEE")]}


@pytest.mark.parametrize("name", EXTRA_CASES)
def test_bic_table_equals_mclust_on_other_data(name):
    _, result = _result(name)
    ref = pd.read_csv(EXTRA / f"{name}_BIC.csv", index_col=0)
    _assert_table(result.bic, ref, skip=KNOWN.get(name, ()))


@pytest.mark.xfail(not _COMPILED, strict=True,
                   reason="the NumPy path fits banknote G=9 VEE where mclust gives NA")
def test_banknote_vee_9_is_na_as_in_mclust():
    _, result = _result("banknote")
    assert np.isnan(result.bic.loc[9, "VEE"])


@pytest.mark.parametrize("name", ["diabetes", "mix3d", "mix1d", "noise2d",
                                  "diabetes_prior"])
def test_icl_table_equals_mclust(name):
    _, result = _result(name)
    ref = pd.read_csv(EXTRA / f"{name}_ICL.csv", index_col=0)
    _assert_table(result.icl, ref)


@pytest.mark.parametrize("name", [c for c in EXTRA_CASES if c != "wide"])
def test_best_model_classification_and_uncertainty_equal_mclust(name):
    _, result = _result(name)
    best = pd.read_csv(EXTRA / f"{name}_best.csv").iloc[0]
    assert (result.best_model, result.best_G) == (best.model, best.G)
    assert result.loglik == pytest.approx(best.loglik, abs=1e-4)
    assert result.df == best.df
    assert result.bic_value == pytest.approx(best.bic, abs=1e-3)
    assert result.icl_value == pytest.approx(best.icl, abs=1e-3)
    ref = pd.read_csv(EXTRA / f"{name}_classification.csv")
    # mclust: components 1..G, noise 0; gaussmix: 0..G-1, noise -1.
    np.testing.assert_array_equal(result.classification + 1,
                                  np.where(ref.classification == 0, 0,
                                           ref.classification))
    np.testing.assert_allclose(result.uncertainty, ref.uncertainty, atol=1e-6)


def test_noise_only_row_and_hypervolume():
    X, result = _result("noise2d")
    hyp = pd.read_csv(EXTRA / "noise2d_hypvol.csv")["hypvol"].iloc[0]
    assert hypervolume(X) == pytest.approx(hyp, rel=1e-12)
    assert result.hypvol == pytest.approx(hyp, rel=1e-12)
    n = len(X)
    np.testing.assert_allclose(result.bic.loc[0], 2 * n * np.log(1 / hyp) - np.log(n))
    assert 0 < result.noise_proportion < 0.5
    assert (result.classification == -1).sum() > 0


# ---------------------------------------------------------------------- result object
def test_best_behaves_like_a_fitted_gaussian_mixture():
    X, result = _result("iris")
    best = result.best
    # select saw a DataFrame: the estimator knows its feature names.
    X = pd.DataFrame(X, columns=list(best.feature_names_in_))
    assert isinstance(best, gaussmix.GaussianMixture)
    assert best.n_components == 2 and best.covariance_type == "VEV"
    proba = best.predict_proba(X)
    np.testing.assert_allclose(proba, result.z, atol=1e-5)
    assert (best.predict(X) == result.classification).mean() == 1.0
    assert best.score_samples(X).sum() == pytest.approx(result.loglik, abs=1e-4)
    assert best.score(X) == pytest.approx(result.loglik / len(X), abs=1e-6)
    sample, labels = best.sample(50)
    assert sample.shape == (50, 4) and labels.shape == (50,)
    assert best.bic(X) == pytest.approx(-result.bic_value, abs=1e-3)  # sign: sklearn's
    assert best.n_features_in_ == 4 and best.converged_
    np.testing.assert_allclose(best.precisions_, np.linalg.inv(best.covariances_),
                               rtol=1e-8, atol=1e-8)


def test_uncertainty_and_classification_follow_z():
    _, result = _result("faithful")
    np.testing.assert_allclose(result.uncertainty, 1 - result.z.max(axis=1))
    np.testing.assert_array_equal(result.classification, result.z.argmax(axis=1))
    assert result.uncertainty.max() <= 1 - 1 / result.best_G


def test_summary_reports_the_mclust_figures():
    _, result = _result("iris")
    text = result.summary()
    assert str(result) == text
    assert "Mclust VEV (ellipsoidal, equal shape) model with 2 components" in text
    assert "-215.7260" in text and "-561.7285" in text and "-561.7289" in text
    assert "VEV,2" in text and "VEV,3" in text  # top three models
    assert "Clustering table" in text and "100" in text
    assert "VEV,2" in repr(result)
    assert [m for m, _, _ in result.top(3)] == ["VEV", "VEV", "VVV"]


def test_plots_return_figures():
    matplotlib = pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    _, result = _result("faithful")
    fig = result.plot_bic()
    assert isinstance(fig, Figure)
    assert len(fig.axes[0].get_lines()) == 14
    assert isinstance(result.plot_bic("ICL"), Figure)
    assert isinstance(result.plot_classification(), Figure)
    assert isinstance(result.plot_uncertainty(), Figure)
    _, iris = _result("iris")
    grid = iris.plot_classification()
    assert len(grid.axes) == 16
    with pytest.raises(ValueError, match="dims"):
        iris.plot_uncertainty(dims=[0, 9])
    assert matplotlib is not None


# ---------------------------------------------------------------- options and checks
def test_parallel_cells_give_the_same_tables():
    X = pd.read_csv(_shared("faithful.csv")).to_numpy()
    one = select(X, G=[2, 3], models=["EEE", "VVV", "EVE"], n_jobs=1)
    two = select(X, G=[2, 3], models=["EEE", "VVV", "EVE"], n_jobs=2)
    pd.testing.assert_frame_equal(one.bic, two.bic)
    pd.testing.assert_frame_equal(one.icl, two.icl)


def test_large_data_initialise_on_a_reproducible_subset():
    X, _ = _extra_data("big2d")
    a = select(X, G=[3], models=["VVV"], random_state=0)
    b = select(X, G=[3], models=["VVV"], random_state=0)
    assert a.subset.shape == (2000,)
    np.testing.assert_array_equal(a.subset, b.subset)
    assert a.bic.loc[3, "VVV"] == b.bic.loc[3, "VVV"]


def test_model_and_G_arguments():
    X = pd.read_csv(_shared("faithful.csv")).to_numpy()
    result = select(X, G=[3, 2, 2], models="VVV")
    assert list(result.bic.index) == [2, 3] and list(result.bic.columns) == ["VVV"]
    assert isinstance(result, SelectionResult)
    with pytest.raises(ValueError, match="Unknown mclust model"):
        select(X, models=["XYZ"])
    with pytest.raises(ValueError, match="G must be positive"):
        select(X, G=[0, 1])
    with pytest.raises(ValueError, match="NaN"):
        select(np.array([[1.0, np.nan], [2.0, 3.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="noise"):
        select(X, noise=np.ones(len(X), dtype=bool))


def test_one_dimensional_models_map_to_E_and_V():
    x = pd.read_csv(EXTRA / "mix1d.csv")["x1"].to_numpy()
    with pytest.warns(UserWarning, match=r"VVV, EII mean V, E there"):
        result = select(x, G=[1, 2], models=["VVV", "EII"])
    assert list(result.bic.columns) == ["E", "V"]


# ------------------------------------------------------------------------------- CLI
def _cli(argv, capsys):
    from gaussmix._select_cli import add_arguments, run

    parser = add_arguments(argparse.ArgumentParser())
    code = run(parser.parse_args(argv))
    return code, capsys.readouterr()


def test_cli_prints_the_table_and_best_model(tmp_path, capsys):
    faithful = pd.read_csv(_shared("faithful.csv"))
    csv = tmp_path / "faithful.csv"
    faithful.to_csv(csv, index=False)
    code, out = _cli([str(csv), "-G", "1:3", "--models", "EEE,VVV", "--icl"], capsys)
    assert code == 0
    assert "Bayesian Information Criterion" in out.out and "ICL" in out.out
    assert "-2314.3163" in out.out and "Mclust EEE" in out.out
    npy = tmp_path / "faithful.npy"
    np.save(npy, faithful.to_numpy())
    code, out = _cli([str(npy), "-G", "3", "-m", "EEE", "-q"], capsys)
    assert code == 0 and out.out.strip() == "EEE,3 BIC=-2314.3163 (higher is better)"
    parquet = tmp_path / "faithful.parquet"
    faithful.to_parquet(parquet)
    code, out = _cli([str(parquet), "-G", "2-3", "-m", "EEE", "-q",
                      "--plot", str(tmp_path / "bic.png")], capsys)
    assert code == 0 and out.out.startswith("EEE,3")
    assert (tmp_path / "bic.png").stat().st_size > 0


def test_cli_reports_unreadable_input(tmp_path, capsys):
    code, out = _cli([str(tmp_path / "missing.csv")], capsys)
    assert code == 1 and "missing.csv: no such file" in out.err
    bad = tmp_path / "text.csv"
    bad.write_text("a,b\nx,y\nz,w\n")
    code, out = _cli([str(bad)], capsys)
    assert code == 1 and "no numeric column" in out.err


def test_cli_reads_data_as_fit_does(tmp_path, capsys, monkeypatch):
    import gaussmix._mclust.select as select_module

    path = tmp_path / "mixed.csv"
    path.write_text("u,v,label\n1,2,a\n3,5,b\n4,4,c\n6,1,d\n")
    code, out = _cli([str(path), "-G", "1"], capsys)
    assert code == 1 and "column 'label' is not numeric" in out.err
    seen = []

    def fake_select(X, **kwargs):
        seen.append(X)
        raise ValueError("stop here")

    monkeypatch.setattr(select_module, "select", fake_select)
    code, out = _cli([str(path), "--columns", "v,u"], capsys)
    assert code == 1 and "stop here" in out.err
    # The column names reach select (its plots label axes with them).
    assert list(seen[0].columns) == ["v", "u"]
    np.testing.assert_array_equal(seen[0].to_numpy(), [[2, 1], [5, 3], [4, 4], [1, 6]])


def test_cli_reads_a_one_column_csv_like_the_library(tmp_path, capsys):
    # Issue 17: a delimiter sniffer once took the header's letters for a delimiter.
    values = np.r_[np.linspace(0, 1, 30), np.linspace(6, 8, 30)]
    csv = tmp_path / "one.csv"
    csv.write_text("value\n" + "\n".join(f"{v:.6f}" for v in values) + "\n")
    code, out = _cli([str(csv), "-G", "1:2", "-q"], capsys)
    want = select(np.round(values, 6), G=range(1, 3))
    assert code == 0
    assert out.out.strip() == (f"{want.best_model},{want.best_G} BIC={want.bic_value:.4f} "
                               "(higher is better)")
