"""MixtureDiscriminant (mclust's MclustDA / EDDA) and select(X, y=...) (MclustSSC).

The references are live R mclust 6.0.0 (Debian), written by
``tests/data/mclust_da/make_reference.R`` (the commands are there): iris, mclust's
banknote, wdbc (its ten "mean" features), diabetes and thyroid. mclust 6.0.0's df of
EDDA counts no class proportions (``bic(equalPro = TRUE)``); 6.1.1 changed it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gaussmix
from gaussmix._mclust.em import compiled_available
from gaussmix import MixtureDiscriminant

DATA = Path(__file__).parent / "data" / "mclust_da"
# wdbc's MclustDA and MclustSSC grids (10-D, 14 models, G 1..5) take minutes here: the
# tests fit EDDA on it, the other faces on the four other data sets.
ALL = ["iris", "banknote", "diabetes", "thyroid", "wdbc"]
FAST = ["iris", "banknote", "diabetes", "thyroid"]


def load(name):
    df = pd.read_csv(DATA / f"{name}.csv")
    return df.drop(columns="class").to_numpy(float), df["class"].astype(str).to_numpy()


def reference(name, kind):
    return pd.read_csv(DATA / f"{name}_{kind}.csv", keep_default_na=False,
                       na_values=["NA"])


def test_reference_was_written_by_mclust_6_0():
    assert (DATA / "mclust_version.txt").read_text().strip() == "6.0.0"


@pytest.fixture(scope="module")
def fitted():
    cache = {}

    def get(name, model_type):
        if (name, model_type) not in cache:
            X, y = load(name)
            cache[name, model_type] = MixtureDiscriminant(model_type=model_type).fit(X, y)
        return cache[name, model_type]

    return get


@pytest.mark.parametrize("name", ALL)
def test_edda_matches_mclust(name, fitted):
    X, y = load(name)
    clf = fitted(name, "EDDA")
    ref_bic = reference(name, "edda_bic").set_index("model")["BIC"]
    ours = clf.bic_[ref_bic.index].to_numpy()
    assert np.array_equal(np.isnan(ours), np.isnan(ref_bic.to_numpy()))
    np.testing.assert_allclose(ours, ref_bic.to_numpy(), atol=0.01)
    summ = reference(name, "summary").set_index("type").loc["EDDA"]
    assert clf.loglik_ == pytest.approx(summ.loglik, abs=0.01)
    assert clf.df_ == summ.df
    assert clf.bic_value_ == pytest.approx(summ.bic, abs=0.01)
    models = reference(name, "edda_models")
    assert {m.model for m in clf.class_models_} == set(models.model)
    pred = reference(name, "predictions")
    assert np.array_equal(clf.predict(X), pred["EDDA_class"].astype(str).to_numpy())
    assert np.mean(clf.predict(X) != y) == pytest.approx(summ.error, abs=1e-12)
    z = pred[[f"EDDA_z_{c}" for c in clf.classes_]].to_numpy()
    np.testing.assert_allclose(clf.predict_proba(X), z, atol=1e-6)


@pytest.mark.parametrize("name", FAST)
def test_mclustda_matches_mclust(name, fitted):
    X, y = load(name)
    clf = fitted(name, "MclustDA")
    ref = reference(name, "da_models").set_index("class")
    for m in clf.class_models_:
        r = ref.loc[m.label]
        assert (m.model, m.G, m.n) == (r.model, r.G, r.n)
        assert m.loglik == pytest.approx(r.loglik, abs=0.01)
        assert m.bic == pytest.approx(r.bic, abs=0.01)
    summ = reference(name, "summary").set_index("type").loc["MclustDA"]
    assert clf.loglik_ == pytest.approx(summ.loglik, abs=0.01)
    assert clf.df_ == summ.df
    assert clf.bic_value_ == pytest.approx(summ.bic, abs=0.01)
    pred = reference(name, "predictions")
    assert np.array_equal(clf.predict(X), pred["MclustDA_class"].astype(str).to_numpy())
    z = pred[[f"MclustDA_z_{c}" for c in clf.classes_]].to_numpy()
    np.testing.assert_allclose(clf.predict_proba(X), z, atol=1e-4)
    assert np.mean(clf.predict(X) != y) == pytest.approx(summ.error, abs=1e-12)


@pytest.mark.parametrize("model_type", ["EDDA", "MclustDA"])
@pytest.mark.parametrize("name", FAST)
def test_cross_validate_matches_cvmclustda_on_its_folds(name, model_type, fitted):
    X, y = load(name)
    clf = fitted(name, model_type)
    pred = reference(name, "predictions")
    cv = clf.cross_validate(X, y, folds=pred[f"{model_type}_fold"].to_numpy())
    summ = reference(name, "summary").set_index("type").loc[model_type]
    assert cv.error == pytest.approx(summ.cv_ce, abs=1e-12)
    assert cv.se_error == pytest.approx(summ.cv_se_ce, abs=1e-12)
    assert np.array_equal(cv.classification,
                          pred[f"{model_type}_cv_class"].astype(str).to_numpy())
    # diabetes' MclustDA: in two folds the 3-component fit of class Overt (about 30
    # rows in 3-D) ends at another point than R's (EEV and VEV, near-singular), which
    # moves that fold's Brier score by < 0.007 and the mean by 7e-4; elsewhere 1e-6.
    tol = 1e-3 if (name, model_type) == ("diabetes", "MclustDA") else 1e-6
    assert cv.brier == pytest.approx(summ.cv_brier, abs=tol)
    assert cv.se_brier == pytest.approx(summ.cv_se_brier, abs=tol)


@pytest.mark.parametrize("name", FAST)
def test_class_prior_probs_match_mclust(name, fitted):
    X, y = load(name)
    clf = fitted(name, "MclustDA")
    rows = reference(name, "priors_pred")
    new = X[rows["row"].to_numpy() - 1]
    priors = reference(name, "priors").set_index("class").loc[clf.classes_, "prior"]
    np.testing.assert_allclose(clf.class_prior_probs(new), priors.to_numpy(), atol=1e-6)
    adjusted = clf.set_params(priors="adjusted")
    try:
        assert np.array_equal(adjusted.predict(new), rows["class"].astype(str).to_numpy())
    finally:
        clf.set_params(priors=None)


@pytest.mark.parametrize("name", FAST)
def test_select_with_labels_matches_mclustssc(name):
    X, _ = load(name)
    cls = reference(name, "ssc_class")
    y = cls["label"].to_numpy(dtype=object)  # NaN where unlabelled
    result = gaussmix.select(X, y=y)
    ref = reference(name, "ssc_bic").set_index("model")["BIC"]
    ours = result.bic.iloc[0][ref.index].to_numpy()
    assert np.array_equal(np.isnan(ours), np.isnan(ref.to_numpy()))
    np.testing.assert_allclose(ours, ref.to_numpy(), atol=0.01)
    fit = reference(name, "ssc_fit").iloc[0]
    assert (result.best_model, result.best_G, result.df) == (fit.model, fit.G, fit.df)
    assert result.loglik == pytest.approx(fit.loglik, abs=0.01)
    assert np.array_equal(result.predicted_labels.astype(str),
                          cls["classification"].astype(str).to_numpy())
    labelled = ~pd.isna(y)
    assert np.array_equal(result.predicted_labels[labelled].astype(str),
                          y[labelled].astype(str))


def test_unlabelled_markers_are_equivalent():
    X, y = load("iris")
    codes = np.searchsorted(np.unique(y), y)
    hide = np.arange(len(y)) % 3 != 0
    as_minus_one = np.where(hide, -1, codes)
    as_none = np.where(hide, None, codes.astype(object))
    as_nan = np.where(hide, np.nan, codes.astype(float))
    as_float = np.where(hide, -1.0, codes.astype(float))  # an integer column with NaN
    tables = [gaussmix.select(X, y=v, models=["VVV", "EEE"]).bic
              for v in (as_minus_one, as_none, as_nan, as_float)]
    for table in tables[1:]:
        pd.testing.assert_frame_equal(tables[0], table)


def test_semisupervised_likelihood_never_falls_and_matches_a_slow_em():
    """The engine's fixed-label EM against an obvious NumPy one (VVV)."""
    from scipy.stats import multivariate_normal

    X, y = load("diabetes")
    codes = np.searchsorted(np.unique(y), y)
    codes[np.arange(len(y)) % 2 == 0] = -1
    result = gaussmix.select(X, y=codes, models="VVV", tol=1e-10)
    G = 3
    z = np.full((len(y), G), 1 / G)
    z[codes >= 0] = np.eye(G)[codes[codes >= 0]]
    history = []
    for _ in range(5000):
        nk = z.sum(0)
        pro, mu = nk / len(y), (z.T @ X) / nk[:, None]
        cov = [((X - mu[k]).T * z[:, k]) @ (X - mu[k]) / nk[k] for k in range(G)]
        logp = np.column_stack([np.log(pro[k]) + multivariate_normal(mu[k], cov[k])
                                .logpdf(X) for k in range(G)])
        ll = np.where(codes >= 0, logp[np.arange(len(y)), np.maximum(codes, 0)],
                      np.logaddexp.reduce(logp, axis=1)).sum()
        if history and ll - history[-1] <= 1e-10:
            history.append(ll)
            break
        history.append(ll)
        z = np.exp(logp - np.logaddexp.reduce(logp, axis=1)[:, None])
        z[codes >= 0] = np.eye(G)[codes[codes >= 0]]
    assert np.all(np.diff(history) > -1e-8)
    assert result.loglik == pytest.approx(history[-1], abs=1e-6)


def test_summaries_read_like_mclust(fitted):
    X, y = load("iris")
    text = fitted("iris", "MclustDA").summary(X, y)
    assert "Gaussian finite mixture model for classification" in text
    assert "MclustDA model summary:" in text
    assert "-172.8135" in text and "-581.1269" in text
    assert "Classification error = 0.0200" in text
    ssc = gaussmix.select(X, y=np.where(np.arange(150) % 4 == 0, y, None))
    assert "semi-supervised" in ssc.summary() and "VVE" in ssc.summary()


def test_given_priors_shift_the_posterior_as_bayes_rule(fitted):
    X, _ = load("iris")
    clf = fitted("iris", "EDDA")
    base = clf.predict_proba(X[:5])
    prior = np.array([0.2, 0.3, 0.5])
    other = MixtureDiscriminant(model_type="EDDA", priors=prior).fit(*load("iris"))
    expected = base / clf.class_prior_ * prior
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(other.predict_proba(X[:5]), expected, rtol=1e-10)


def test_edda_vvv_is_one_gaussian_per_class_by_bayes_rule():
    """EDDA with VVV: each class one Gaussian at its ML mean and covariance; the
    posterior is Bayes' rule with the training proportions (SciPy's densities)."""
    from scipy.stats import multivariate_normal

    X, y = load("iris")
    clf = MixtureDiscriminant(model_type="EDDA", models="VVV").fit(X, y)
    covs = clf.class_models_[0].params.full_covariances()
    joint = []
    for k, c in enumerate(clf.classes_):
        rows = X[y == c]
        np.testing.assert_allclose(covs[k], np.cov(rows.T, bias=True), rtol=1e-10)
        dist = multivariate_normal(rows.mean(0), np.cov(rows.T, bias=True))
        joint.append(np.mean(y == c) * dist.pdf(X))
    joint = np.column_stack(joint)
    np.testing.assert_allclose(clf.predict_proba(X), joint / joint.sum(1, keepdims=True),
                               atol=1e-10)
    assert clf.loglik_ == pytest.approx(np.log(joint.sum(1)).sum(), rel=1e-12)


def test_edda_sample_weight_equals_repeated_rows():
    X, y = load("diabetes")
    w = np.arange(len(y)) % 3
    a = MixtureDiscriminant(model_type="EDDA").fit(X, y, sample_weight=w)
    b = MixtureDiscriminant(model_type="EDDA").fit(np.repeat(X, w, 0), np.repeat(y, w))
    np.testing.assert_allclose(a.bic_.to_numpy(), b.bic_.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-9)


def test_pipeline_and_grid_search():
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load("iris")
    pipe = make_pipeline(StandardScaler(), MixtureDiscriminant(G=[1, 2]))
    grid = GridSearchCV(pipe, {"mixturediscriminant__model_type": ["EDDA", "MclustDA"]},
                        cv=StratifiedKFold(3, shuffle=True, random_state=0))
    grid.fit(X, y)
    assert grid.best_score_ > 0.9
    assert grid.predict(X).shape == y.shape


@pytest.mark.parametrize("model_type", ["MclustDA", "EDDA"])
def test_check_estimator(model_type):
    from sklearn.utils.estimator_checks import check_estimator

    expected = {}
    if model_type == "MclustDA":
        # scikit-learn's data there: 15 rows in 30-D with integer weights; every row of
        # class 0 but one has weight 0, so that class is one point repeated and no
        # mixture of it has a covariance (mclust fails there too: a FitError).
        expected["check_sample_weight_equivalence_on_dense_data"] = (
            "a class of one distinct row has no covariance")
    check_estimator(MixtureDiscriminant(model_type, G=[1, 2], models=["EII", "VVI", "VVV"]),
                    expected_failed_checks=expected)


@pytest.mark.parametrize("kwargs, fit_args, match", [
    ({"model_type": "QDA"}, None, "model_type must be 'MclustDA' or 'EDDA'"),
    ({"models": ["XYZ"]}, None, "mclust model names"),
    ({"priors": [1, 2]}, "predict", "priors must be None, 'adjusted', or 3"),
    ({}, "one class", "at least 2 classes"),
    ({"model_type": "MclustDA"}, "half weights", "whole-number sample weights"),
])
def test_bad_input_says_what_to_do(kwargs, fit_args, match):
    X, y = load("iris")
    clf = MixtureDiscriminant(**kwargs)
    with pytest.raises(ValueError, match=match):
        if fit_args == "predict":
            clf.fit(X, y).predict(X)
        elif fit_args == "one class":
            clf.fit(X, np.zeros(len(y)))
        elif fit_args == "half weights":
            clf.fit(X, y, sample_weight=np.full(len(y), 0.5))
        else:
            clf.fit(X, y)


def test_select_with_labels_rejects_bad_input():
    X, y = load("iris")
    with pytest.raises(ValueError, match="one label per row"):
        gaussmix.select(X, y=y[:10])
    with pytest.raises(ValueError, match="no labelled row"):
        gaussmix.select(X, y=np.full(len(y), -1))
    with pytest.raises(ValueError, match="G cannot be smaller"):
        gaussmix.select(X, y=y, G=2)


def test_classify_command_writes_the_classifiers_predictions(tmp_path, capsys):
    from gaussmix.cli import main

    X, y = load("diabetes")
    out = tmp_path / "pred.csv"
    rc = main(["classify", str(DATA / "diabetes.csv"), "--label", "class", "--type",
               "EDDA", "--predict", str(DATA / "diabetes.csv"), "-o", str(out)])
    assert rc == 0
    assert "EDDA model summary:" in capsys.readouterr().out
    got = pd.read_csv(out)
    pred = reference("diabetes", "predictions")  # R's EDDA on the same rows
    assert np.array_equal(got["predicted"].astype(str), pred["EDDA_class"].astype(str))
    classes = sorted(pd.unique(y))
    np.testing.assert_allclose(got[[f"p_{c}" for c in classes]],
                               pred[[f"EDDA_z_{c}" for c in classes]], atol=1e-6)
    assert main(["classify", str(DATA / "diabetes.csv"), "--label", "nope"]) == 1
    assert "unknown column 'nope'; the columns are 'glucose'" in capsys.readouterr().err


def test_classify_command_reads_as_fit_does(tmp_path, capsys):
    """One reader: TSV, headerless CSV (label by position), Parquet and .npy give the
    classifier of the same rows; NEW may hold other columns; an empty label is named."""
    from gaussmix.cli import main

    frame = pd.read_csv(DATA / "diabetes.csv")
    X, y = load("diabetes")
    expected = MixtureDiscriminant(model_type="EDDA").fit(X, y).predict_proba(X)
    codes = pd.factorize(frame["class"], sort=True)[0]
    frame.to_csv(tmp_path / "d.tsv", sep="\t", index=False)
    frame.to_csv(tmp_path / "bare.csv", header=False, index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    np.save(tmp_path / "d.npy", np.column_stack([frame.iloc[:, :3], codes]))
    frame.assign(note="x").to_csv(tmp_path / "new.csv", index=False)
    runs = {"d.tsv": ["--label", "class"], "bare.csv": ["--label", "3"],
            "d.parquet": ["--label", "class"], "d.npy": ["--label", "3"]}
    for name, label in runs.items():
        out = tmp_path / f"{name}.pred.csv"
        new = "new.csv" if name in ("d.tsv", "d.parquet") else name
        assert main(["classify", str(tmp_path / name), *label, "--type", "EDDA",
                     "--predict", str(tmp_path / new), "-o", str(out)]) == 0, name
        got = pd.read_csv(out)
        np.testing.assert_allclose(got.iloc[:, 1:].to_numpy(), expected, rtol=1e-10,
                                   err_msg=name)
    frame.iloc[:, :3].to_csv(tmp_path / "bare_new.csv", header=False, index=False)
    assert main(["classify", str(tmp_path / "bare.csv"), "--label", "3", "--type", "EDDA",
                 "--predict", str(tmp_path / "bare_new.csv"), "-o",
                 str(tmp_path / "p.csv")]) == 0
    np.testing.assert_allclose(pd.read_csv(tmp_path / "p.csv").iloc[:, 1:], expected,
                               rtol=1e-10)
    capsys.readouterr()
    frame.drop(columns="sspg").to_csv(tmp_path / "short.csv", index=False)
    assert main(["classify", str(tmp_path / "d.tsv"), "--label", "class", "--type", "EDDA",
                 "--predict", str(tmp_path / "short.csv")]) == 1
    assert "lacks column(s) 'sspg'" in capsys.readouterr().err
    frame.assign(**{"class": frame["class"].where(frame.index != 4, "")}).to_csv(
        tmp_path / "gap.csv", index=False)
    assert main(["classify", str(tmp_path / "gap.csv"), "--label", "class"]) == 1
    assert "data row 5 has no value in the label column class" in capsys.readouterr().err


def test_classify_command_output_is_checked_first_and_written_atomically(tmp_path,
                                                                          capsys):
    from gaussmix.cli import main

    X, y = load("diabetes")
    train = tmp_path / "train.csv"
    train.write_bytes((DATA / "diabetes.csv").read_bytes())
    before = train.read_bytes()
    args = ["classify", str(train), "--label", "class", "--type", "EDDA", "--predict",
            str(train), "-o"]
    assert main(args + [str(train)]) == 1  # never over an input
    assert "input files are never overwritten" in capsys.readouterr().err
    assert train.read_bytes() == before
    assert main(args + [str(tmp_path / "pred.npy")]) == 1  # class names: not .npy
    assert "use .csv, .tsv or .parquet" in capsys.readouterr().err
    assert main(args + [str(tmp_path / "no" / "pred.csv")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(args + [str(tmp_path / "pred.parquet")]) == 0
    got = pd.read_parquet(tmp_path / "pred.parquet")
    clf = MixtureDiscriminant(model_type="EDDA").fit(X, y)
    assert np.array_equal(got["predicted"].astype(str), clf.predict(X))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.parquet", "train.csv"]


@pytest.mark.skipif(not compiled_available(),
                    reason="the compiled backend needs Numba (the fast extra)")
def test_edda_compiled_and_numpy_backends_agree():
    X, y = load("thyroid")
    a = MixtureDiscriminant("EDDA", backend="numba").fit(X, y)
    b = MixtureDiscriminant("EDDA", backend="numpy").fit(X, y)
    np.testing.assert_allclose(a.bic_.to_numpy(), b.bic_.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-9)


def test_select_keeps_em_parameters_for_vee_as_mclust():
    """mclust's mstepVEE (and EVE, VVE, VEV) says returnCode 2 on success, so Mclust's
    summary drops its extra M-step: the returned parameters are EM's own."""
    from scipy.special import logsumexp

    from gaussmix._engine.estep import weighted_log_prob

    X, y = load("wdbc")
    ref = reference("wdbc", "M_VEE").iloc[0]
    assert ref.returnCode == 2
    result = gaussmix.select(X[y == "M"], G=2, models="VEE")
    assert result.loglik == pytest.approx(ref.loglik, abs=1e-3)
    dens = logsumexp(weighted_log_prob(X[y == "M"], result.params), axis=1).sum()
    assert dens == pytest.approx(ref.dens_returned, abs=1e-3)
    # the extra M-step would have moved it by 0.006
    assert abs(ref.dens_extra_mstep - ref.dens_returned) > 5e-3
