"""The ``gaussmix`` command, driven through ``main([...])`` (and once as a subprocess)."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gaussmix import GaussianMixture, load, save
from gaussmix.cli import main


def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [6.0, 1.0], [2.0, 7.0]])
    X = np.vstack([rng.normal(c, [1.0, 0.6], (60, 2)) for c in centers])
    return X[rng.permutation(len(X))]


@pytest.fixture(scope="module")
def X():
    return _blobs()


@pytest.fixture
def data_csv(tmp_path, X):
    path = tmp_path / "data.csv"
    pd.DataFrame(X, columns=["u", "v"]).to_csv(path, index=False)
    return path


@pytest.fixture
def model_file(tmp_path, data_csv, capsys):
    path = tmp_path / "model.gmm"
    assert main(["fit", str(data_csv), "-k", "3", "--seed", "0", "--out", str(path)]) == 0
    capsys.readouterr()
    return path


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _read_csv(text):
    return pd.read_csv(io.StringIO(text))


def _one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gaussmix: error: "), err
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------ help
@pytest.mark.parametrize("command", ["fit", "predict", "score", "sample", "plot"])
def test_help_of_each_command(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: gaussmix {command}")


def test_top_level_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("fit", "predict", "score", "sample", "plot", "select", "demo"):
        assert command in out


def test_python_dash_m_help():
    result = subprocess.run([sys.executable, "-m", "gaussmix", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: gaussmix")
    assert result.stderr == ""


def test_no_command(capsys):
    assert main([]) == 2
    assert "no command given" in _one_error_line(capsys.readouterr().err)


# ------------------------------------------------------------------ fit
def test_fit_matches_scikit_learn_and_writes_a_model(tmp_path, data_csv, X, capsys):
    out = tmp_path / "m.gmm"
    assert main(["fit", str(data_csv), "-k", "3", "--seed", "0", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # not a terminal: no progress bar
    gm = load(out)
    sk = SkGaussianMixture(3, random_state=0, tol=1e-5, max_iter=1000).fit(X)  # the CLI's
    order, sk_order = np.argsort(gm.means_[:, 0]), np.argsort(sk.means_[:, 0])
    np.testing.assert_allclose(gm.means_[order], sk.means_[sk_order], rtol=1e-6)
    np.testing.assert_allclose(gm.weights_[order], sk.weights_[sk_order], rtol=1e-6)
    assert list(gm.feature_names_in_) == ["u", "v"]
    text = captured.out
    ll = sk.score(X) * len(X)
    assert f"log-likelihood: {ll:.3f}"[:-1] in text
    # the command line's one BIC sign (select's, mclust's): -1 x scikit-learn's
    assert f"BIC:            {-sk.bic(X):.3f}"[:-1] in text and "higher is better" in text
    assert "converged:      yes" in text
    assert f"after {gm.n_iter_} iteration" in text
    for w in gm.weights_:
        assert f"{w:.6g}" in text
    for m in gm.means_.ravel():
        assert f"{m:.6g}" in text


def test_fit_options_reach_the_estimator(tmp_path, data_csv, X, capsys):
    out = tmp_path / "m.gmm"
    assert main(["fit", str(data_csv), "-k", "2", "--covariance", "diag", "--seed", "3",
                 "--max-iter", "2", "--tol", "0", "--n-init", "2", "--reg-covar", "0.01",
                 "--init", "random", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "converged:      NO" in captured.out
    assert "gaussmix: warning: " in captured.err  # the ConvergenceWarning, one line
    gm = load(out)
    assert gm.get_params()["covariance_type"] == "diag"
    assert (gm.max_iter, gm.tol, gm.n_init, gm.reg_covar, gm.init_params) == (
        2, 0.0, 2, 0.01, "random")
    reference = GaussianMixture(2, covariance_type="diag", random_state=3, max_iter=2,
                                tol=0, n_init=2, reg_covar=0.01, init_params="random")
    with pytest.warns(Warning):
        reference.fit(pd.DataFrame(X, columns=["u", "v"]))
    np.testing.assert_array_equal(gm.means_, reference.means_)


def test_fit_columns_and_mclust_model(tmp_path, X, capsys):
    path = tmp_path / "wide.csv"
    frame = pd.DataFrame({"id": np.arange(len(X)), "u": X[:, 0], "name": "row",
                          "v": X[:, 1]})
    frame.to_csv(path, index=False)
    out = tmp_path / "m.gmm"
    assert main(["fit", str(path), "-k", "3", "--columns", "u,v", "--covariance", "VVV",
                 "--seed", "0", "--out", str(out)]) == 0
    assert "covariance VVV" in capsys.readouterr().out
    assert list(load(out).feature_names_in_) == ["u", "v"]


def test_progress_bar(data_csv, capsys):
    assert main(["fit", str(data_csv), "-k", "3", "--seed", "0", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "EM" in err and "log-lik" in err and "change" in err
    assert main(["fit", str(data_csv), "-k", "3", "--seed", "0", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_progress_hook_leaves_no_trace_on_the_model(tmp_path, data_csv, X, capsys):
    out = tmp_path / "m.gmm"
    assert main(["fit", str(data_csv), "-k", "3", "--seed", "0", "--progress",
                 "--out", str(out)]) == 0
    gm = load(out)
    plain = GaussianMixture(3, random_state=0, tol=1e-5, max_iter=1000).fit(  # the CLI's
        pd.DataFrame(X, columns=["u", "v"]))
    np.testing.assert_array_equal(gm.means_, plain.means_)


# ------------------------------------------------------------------ predict / score
def _sklearn_with_parameters_of(gm):
    """scikit-learn's GaussianMixture given gm's fitted parameters: an independent
    implementation of predict and score."""
    sk = SkGaussianMixture(gm.n_components, covariance_type=gm.covariance_type)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        setattr(sk, name, getattr(gm, name))
    return sk


def test_predict_labels_and_probabilities(model_file, data_csv, X, tmp_path, capsys):
    gm = load(model_file)
    frame = pd.DataFrame(X, columns=["u", "v"])
    assert main(["predict", str(model_file), str(data_csv)]) == 0
    labels = _read_csv(capsys.readouterr().out)
    assert list(labels.columns) == ["label"]
    np.testing.assert_array_equal(labels["label"], gm.predict(frame))
    # Against scikit-learn given the same parameters.
    sk = _sklearn_with_parameters_of(gm)
    np.testing.assert_array_equal(labels["label"], sk.predict(X))

    out = tmp_path / "proba.csv"
    assert main(["predict", str(model_file), str(data_csv), "--proba", "--out",
                 str(out)]) == 0
    proba = pd.read_csv(out)
    assert list(proba.columns) == ["proba_0", "proba_1", "proba_2"]
    np.testing.assert_allclose(proba.to_numpy(), sk.predict_proba(X), rtol=1e-12,
                               atol=1e-300)


def test_predict_picks_the_model_columns_by_name(model_file, X, tmp_path, capsys):
    path = tmp_path / "shuffled.csv"
    # Other columns may be anything, text too (iris's species): only the model's are read.
    pd.DataFrame({"extra": 1.0, "v": X[:, 1], "species": "setosa", "u": X[:, 0]}).to_csv(
        path, index=False)
    assert main(["predict", str(model_file), str(path)]) == 0
    labels = _read_csv(capsys.readouterr().out)["label"]
    np.testing.assert_array_equal(labels, load(model_file).predict(
        pd.DataFrame(X, columns=["u", "v"])))


def test_predict_columns_given_explicitly_map_by_position(model_file, X, tmp_path,
                                                          capsys):
    path = tmp_path / "renamed.csv"
    pd.DataFrame({"q": X[:, 1], "p": X[:, 0], "z": 0.0}).to_csv(path, index=False)
    assert main(["predict", str(model_file), str(path), "--columns", "p",
                 "--columns", "q"]) == 0
    labels = _read_csv(capsys.readouterr().out)["label"]
    np.testing.assert_array_equal(labels, load(model_file).predict(
        pd.DataFrame(X, columns=["u", "v"])))


def test_predict_on_npy_and_parquet_output(model_file, X, tmp_path, capsys):
    npy = tmp_path / "x.npy"
    np.save(npy, X)
    out = tmp_path / "labels.parquet"
    assert main(["predict", str(model_file), str(npy), "--out", str(out)]) == 0
    expected = load(model_file).predict(pd.DataFrame(X, columns=["u", "v"]))
    np.testing.assert_array_equal(pd.read_parquet(out)["label"], expected)
    out = tmp_path / "labels.csv.gz"
    assert main(["predict", str(model_file), str(npy), "--out", str(out)]) == 0
    assert out.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    np.testing.assert_array_equal(pd.read_csv(out)["label"], expected)


def test_score(model_file, data_csv, X, tmp_path, capsys):
    sk = _sklearn_with_parameters_of(load(model_file))
    assert main(["score", str(model_file), str(data_csv)]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(sk.score(X), rel=1e-12)
    assert main(["score", str(model_file), str(data_csv), "--per-row"]) == 0
    per_row = _read_csv(capsys.readouterr().out)["log_likelihood"]
    np.testing.assert_allclose(per_row, sk.score_samples(X), rtol=1e-12)


# ------------------------------------------------------------------ sample
def test_sample(model_file, tmp_path, capsys):
    assert main(["sample", str(model_file), "-n", "400", "--seed", "5", "--labels"]) == 0
    first = _read_csv(capsys.readouterr().out)
    assert list(first.columns) == ["u", "v", "component"] and len(first) == 400
    assert main(["sample", str(model_file), "-n", "400", "--seed", "5", "--labels"]) == 0
    np.testing.assert_array_equal(_read_csv(capsys.readouterr().out), first)
    # The draws follow the model: each component's rows sit around its mean.
    gm = load(model_file)
    for k in range(3):
        rows = first[first["component"] == k][["u", "v"]].to_numpy()
        stderr = np.sqrt(np.diag(gm.covariances_[k]) / len(rows))
        assert np.all(np.abs(rows.mean(axis=0) - gm.means_[k]) < 5 * stderr)
    out = tmp_path / "s.npy"
    assert main(["sample", str(model_file), "-n", "7", "--out", str(out)]) == 0
    assert np.load(out).shape == (7, 2)


# ------------------------------------------------------------------ plot, select, demo
def test_plot(model_file, data_csv, tmp_path, capsys):
    pytest.importorskip("gaussmix.plot")
    out = tmp_path / "fig.png"
    assert main(["plot", str(model_file), str(data_csv), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().err == ""


def test_plot_pairs_for_more_features(tmp_path, capsys):
    pytest.importorskip("gaussmix.plot")
    rng = np.random.default_rng(1)
    path = tmp_path / "d3.csv"
    pd.DataFrame(rng.normal(size=(60, 3)), columns=list("abc")).to_csv(path, index=False)
    model = tmp_path / "m.gmm"
    assert main(["fit", str(path), "-k", "2", "--seed", "0", "--out", str(model)]) == 0
    for extra in ([], ["--dims", "0", "2"]):
        out = tmp_path / "fig.svg"
        assert main(["plot", str(model), str(path), "--out", str(out), *extra]) == 0
        assert b"<svg" in out.read_bytes()[:2000]
    capsys.readouterr()
    assert main(["plot", str(model), str(path), "--out", str(tmp_path / "f.xyz")]) == 1
    assert "cannot write a 'xyz' image" in _one_error_line(capsys.readouterr().err)


def _png_size(path):
    header = open(path, "rb").read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_plot_of_many_features_draws_the_six_that_separate_best(tmp_path, capsys):
    # 30 features (breast cancer's count); the components differ along 4 and 17 only.
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 30))
    X[:60, 4] += 8
    X[:60, 17] -= 8
    path = tmp_path / "wide.csv"
    pd.DataFrame(X, columns=[f"f{j}" for j in range(30)]).to_csv(path, index=False)
    model = tmp_path / "wide.gmm"
    _run(["fit", path, "-k", "2", "--covariance", "diag", "--seed", "0", "--out", model],
         capsys)
    fig = tmp_path / "wide.png"
    status, _, err = _run(["plot", model, path, "--out", fig, "--dpi", "50"], capsys)
    assert status == 0
    (line,) = err.splitlines()
    assert line.startswith("gaussmix: warning: the model has 30 features; drawing the 6")
    assert "4 (f4)" in line and "17 (f17)" in line and "--dims" in line
    assert max(_png_size(fig)) < 6 * 2.4 * 50 * 1.2  # a 6 x 6 grid, not 30 x 30
    # --dims: these features, no note
    status, _, err = _run(["plot", model, path, "--out", fig, "--dpi", "50",
                           "--dims", "4", "17", "0"], capsys)
    assert status == 0 and err == "" and max(_png_size(fig)) < 3 * 2.4 * 50 * 1.2
    status, _, err = _run(["plot", model, path, "--out", fig, "--dims", "4", "30"], capsys)
    assert status == 1 and "below 30" in _one_error_line(err)


def test_plot_of_one_feature_is_a_histogram_with_the_density(tmp_path, capsys):
    path = tmp_path / "one.csv"
    path.write_text("value\n" + "\n".join(f"{v:.4f}" for v in np.r_[
        np.random.default_rng(3).normal(0, 1, 50), np.random.default_rng(4).normal(6, 1, 50)]))
    model = tmp_path / "one.gmm"
    assert _run(["fit", path, "-k", "2", "--seed", "0", "--out", model], capsys)[0] == 0
    fig = tmp_path / "one.png"
    status, out, err = _run(["plot", model, path, "--out", fig], capsys)
    assert status == 0 and err == "" and f"figure written to {fig}" in out
    width, height = _png_size(fig)
    assert width > height  # one wide panel


def test_select_and_demo_help_when_available(capsys):
    for command, module in (("select", "gaussmix._select_cli"), ("demo", "gaussmix._demo")):
        try:
            __import__(module)
        except ImportError:
            continue
        assert main([command, "--help"]) == 0
        assert capsys.readouterr().out.startswith(f"usage: gaussmix {command}")


def test_missing_delegated_module_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gaussmix._demo", None)  # import now fails
    assert main(["demo", "--seed", "1"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "'gaussmix demo' is not available" in line


def test_select_runs_when_available(tmp_path, data_csv, capsys):
    pytest.importorskip("gaussmix._select_cli")
    assert main(["select", str(data_csv), "-G", "2:3", "-m", "VVV,EII"]) == 0
    assert "VVV" in capsys.readouterr().out


# ------------------------------------------------------------------ one reader
FAITHFUL = os.path.join(os.path.dirname(__file__), "data", "mclust_reference",
                        "faithful.csv")


def _run(argv, capsys):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def _rows_selected_on(out):
    """n from select's summary (the line under 'log-likelihood  n df  BIC  ICL')."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:2] == ["log-likelihood", "n"])
    return int(lines[at + 1].split()[1])


def test_select_reads_a_one_column_csv(tmp_path, capsys):
    # `value` over numbers: one column with a header (select once guessed delimiters).
    path = tmp_path / "one.csv"
    path.write_text("value\n" + "\n".join(str(v) for v in [1.5, 2.5, 1.7, 2.2, 8.1, 8.4,
                                                             7.9, 8.8, 1.1, 8.0]) + "\n")
    status, out, err = _run(["select", path, "-G", "1:2"], capsys)
    assert status == 0 and err == ""
    assert "Mclust" in out and _rows_selected_on(out) == 10


def test_select_keeps_the_first_row_of_a_headerless_csv(tmp_path, capsys):
    faithful = pd.read_csv(FAITHFUL)
    bare = tmp_path / "bare.csv"
    faithful.to_csv(bare, index=False, header=False)
    named = tmp_path / "named.csv"
    faithful.to_csv(named, index=False)
    got = _run(["select", bare, "-G", "3", "-m", "EEE", "-q"], capsys)
    want = _run(["select", named, "-G", "3", "-m", "EEE", "-q"], capsys)
    assert got == want and got[0] == 0  # all 272 rows, the header told apart
    status, out, _ = _run(["select", bare, "-G", "3", "-m", "EEE"], capsys)
    assert status == 0 and _rows_selected_on(out) == 272


@pytest.mark.parametrize("name, text", [
    ("empty.csv", ""),
    ("nan.csv", "u,v\n1,2\n3,\n4,5\n"),
    ("text.csv", "u,v\n1,2\n3,abc\n"),
    ("ragged.csv", "u,v\n1,2\n3,4,5\n"),
    ("absent.csv", None),
])
def test_select_fails_as_fit_does(tmp_path, capsys, name, text):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    fit = _run(["fit", path, "-k", "1"], capsys)
    select = _run(["select", path, "-G", "1"], capsys)
    assert fit[0] == select[0] == 1  # 2 is for a bad command line only
    assert select[2] == fit[2] and _one_error_line(select[2]).startswith(
        f"gaussmix: error: {path}: ")
    if name == "nan.csv":  # the file and the row
        assert "first: data row 2" in select[2]


def test_select_takes_fits_data_options(tmp_path, capsys):
    path = tmp_path / "mixed.tsv"
    path.write_text("u\tlabel\tv\n1\ta\t2\n3\tb\t5\n4\tc\t4\n6\td\t1\n2\te\t2\n")
    status, _, err = _run(["select", path, "-G", "1"], capsys)
    assert status == 1 and "column 'label' is not numeric: row 1 has 'a'" in err
    got = _run(["select", path, "-G", "1", "--columns", "v,u", "-q"], capsys)
    as_csv = tmp_path / "vu.txt"
    as_csv.write_text("2,1\n5,3\n4,4\n1,6\n2,2\n")
    want = _run(["select", as_csv, "-G", "1", "--format", "csv", "--no-header", "-q"],
                capsys)
    assert got[0] == 0 and got == want


@pytest.mark.parametrize("command", ["fit", "select"])
@pytest.mark.parametrize("sep, shown", [(";", "';'"), ("\t", "tab")])
def test_semicolon_csv_names_the_delimiter_option(tmp_path, capsys, command, sep, shown):
    path = tmp_path / "semi.csv"
    pd.DataFrame(_blobs(), columns=["u", "v"]).to_csv(path, sep=sep, index=False)
    extra = ["-k", "2"] if command == "fit" else ["-G", "2", "-m", "VVV"]
    status, _, err = _run([command, path] + extra, capsys)
    assert status == 1 and f"separated by {shown}" in err
    assert f"pass --delimiter {shown}" in _one_error_line(err)
    status, out, _ = _run([command, path, "--delimiter", sep.replace("\t", "tab")] + extra,
                          capsys)
    assert status == 0
    assert (command == "fit" and "180 row(s)" in out) or _rows_selected_on(out) == 180


def test_boolean_columns_are_numbers(tmp_path, capsys):
    X = _blobs()
    flags = X[:, 0] > 3
    csv = tmp_path / "flags.csv"
    csv.write_text("u,flag\n" + "".join(f"{u},{str(f).lower()}\n" for u, f in
                                        zip(X[:, 0], flags)))
    parquet = tmp_path / "flags.parquet"
    pd.DataFrame({"u": X[:, 0], "flag": flags}).to_parquet(parquet)
    outs = []
    for path in (csv, parquet):
        status, out, err = _run(["fit", path, "-k", "2", "--seed", "0"], capsys)
        assert status == 0, err
        outs.append(out.split("row(s)")[1].split("\n", 1)[1])
    assert outs[0] == outs[1]  # the same numbers from either file


def test_select_out_saves_the_chosen_model(tmp_path, capsys):
    import gaussmix

    model = tmp_path / "best.gmm"
    status, out, _ = _run(["select", FAITHFUL, "-G", "2:3", "-m", "EEE,VVV", "--out",
                           model], capsys)
    assert status == 0 and f"model EEE,3 written to {model}" in out
    loglik = float(out.split("log-likelihood")[1].splitlines()[1].split()[0])
    assert gaussmix.read_header(model)["selection"]["best_model"] == "EEE"
    # predict and score read it as any model file: the selection's log-likelihood (the
    # file holds the parameters after the last M-step: within select's tol, 1e-5).
    status, mean, _ = _run(["score", model, FAITHFUL], capsys)
    assert status == 0 and float(mean) * 272 == pytest.approx(loglik, rel=1e-5)
    status, labels, _ = _run(["predict", model, FAITHFUL], capsys)
    counts = _read_csv(labels)["label"].value_counts().sort_values().tolist()
    sizes = sorted(int(v) for v in out.split("Clustering table:")[1].splitlines()[2].split())
    # the same clusters (one row on a border may move with that last M-step)
    assert status == 0 and sum(counts) == 272
    assert np.abs(np.subtract(counts, sizes)).max() <= 1


def test_select_out_is_checked_before_the_grid(tmp_path, capsys, monkeypatch):
    import gaussmix._mclust.select as select_module

    monkeypatch.setattr(select_module, "select", lambda *a, **k: pytest.fail("fitted"))
    data = tmp_path / "data.csv"
    data.write_text(open(FAITHFUL).read())
    for out, why in ((data, "input files are never overwritten"),
                     (tmp_path / "no" / "m.gmm", "does not exist")):
        status, _, err = _run(["select", data, "--out", out], capsys)
        assert status == 1 and why in _one_error_line(err)
    assert data.read_text() == open(FAITHFUL).read()


def test_fit_and_select_print_bic_with_one_sign(tmp_path, capsys):
    # faithful, EEE with 3 components: select's BIC (mclust's -2314.3163) and fit's
    # must be the same number with the same label.
    status, out, _ = _run(["select", FAITHFUL, "-G", "3", "-m", "EEE"], capsys)
    assert status == 0 and "(BIC; higher is better)" in out
    model = tmp_path / "m.gmm"
    _run(["select", FAITHFUL, "-G", "3", "-m", "EEE", "--out", model, "-q"], capsys)
    gm = load(model)
    X = pd.read_csv(FAITHFUL)
    status, out, _ = _run(["fit", FAITHFUL, "-k", "3", "--covariance", "EEE",
                           "--seed", "0"], capsys)
    printed = float(out.split("BIC:")[1].split()[0])
    assert status == 0 and "(higher is better, as in select;" in out
    fitted = GaussianMixture(3, covariance_type="EEE", random_state=0, tol=1e-5,
                             max_iter=1000).fit(X)  # the CLI's defaults
    assert printed == pytest.approx(-fitted.bic(X), abs=1e-5)
    assert -gm.bic(X) == pytest.approx(-2314.3163, abs=0.02)  # select's, same sign
    assert printed == pytest.approx(-2314.3163, abs=0.02)  # fit prints that number too


def test_select_progress_bar_names_each_cell(capsys):
    argv = ["select", FAITHFUL, "-G", "1:2", "-m", "EEE,VVV", "-q"]
    status, out, err = _run(argv + ["--progress"], capsys)
    bar = err.replace("\r", "\n")
    assert status == 0 and "select: 100%" in bar and "4/4" in bar
    # the cell that just ended: model, G and its time
    assert any(f"{m} G={g} took" in bar for m in ("EEE", "VVV") for g in (1, 2))
    assert " s]" in bar
    # Not a terminal (as here) or --no-progress: nothing on stderr.
    assert _run(argv, capsys)[1:] == (out, "")
    assert _run(argv + ["--no-progress"], capsys)[1:] == (out, "")


def test_predict_names_the_model_columns_a_file_lacks(tmp_path, model_file, X, capsys):
    # The model has u and v; this file has v and a text column, not u: the message is
    # about u, not about the text.
    path = tmp_path / "other.csv"
    pd.DataFrame({"species": ["setosa"] * len(X), "v": X[:, 1]}).to_csv(path, index=False)
    for command in ("predict", "score"):
        status, _, err = _run([command, model_file, path], capsys)
        assert status == 1 and "lacks column(s) 'u' that the model was fitted on" in err
        assert "not numeric" not in err


@pytest.mark.parametrize("data", [
    b"\x93NUMPY\x01\x00garbage",
    b"\x93NUMPY\x01\x00\x10\x00{'descr': 'zz', 'fortran_order': False, 'shape': (2,)}",
    b"\x80\x04\x95garbage pickle",
    b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (2,), }"
    + b" " * 50 + b"\n" + b"\x80\x04K\x01.",
])
def test_garbage_npy_is_refused_without_allow_pickle(tmp_path, capsys, data):
    path = tmp_path / "garbage.npy"
    path.write_bytes(data)
    status, _, err = _run(["fit", path, "-k", "1"], capsys)
    line = _one_error_line(err)
    assert status == 1 and line.startswith(f"gaussmix: error: {path}: ")
    assert "allow_pickle" not in line


def test_sample_refuses_an_output_format_it_does_not_write(model_file, tmp_path, capsys):
    json_out = tmp_path / "s.json"
    status, out, err = _run(["sample", model_file, "-n", "5", "--out", json_out], capsys)
    assert status == 1 and out == "" and not json_out.exists()
    assert "cannot write" in err and ".csv, .tsv, .parquet or .npy" in _one_error_line(err)
    status, _, err = _run(["predict", model_file, model_file, "--out", json_out], capsys)
    assert status == 1 and "cannot write" in err  # checked before DATA is read
    plain = tmp_path / "s"
    assert _run(["sample", model_file, "-n", "5", "--out", plain], capsys)[0] == 0
    assert list(pd.read_csv(plain).columns) == ["u", "v"]  # no extension: CSV


def test_fit_and_select_exclude_columns(tmp_path, X, capsys):
    path = tmp_path / "labelled.csv"
    frame = pd.DataFrame({"id": np.arange(len(X)), "u": X[:, 0], "name": "p", "v": X[:, 1]})
    frame.to_csv(path, index=False)
    for command, extra in (("fit", ["-k", "3", "--seed", "0"]),
                           ("select", ["-G", "3", "-m", "VVV", "-q"])):
        excluded = _run([command, path, "--exclude", "id,name", *extra], capsys)
        chosen = _run([command, path, "--columns", "u,v", *extra], capsys)
        assert excluded[0] == 0 and excluded == chosen
        status, _, err = _run([command, path, "--exclude", "id", "--columns", "u", *extra],
                              capsys)
        assert status == 2 and "not allowed with" in err
    status, _, err = _run(["fit", path, "-k", "1", "--exclude", "size"], capsys)
    assert status == 1 and "unknown column 'size'" in err


def test_fit_defaults_reach_the_optimum_select_reaches(tmp_path, capsys):
    # faithful, EEE, 3 components: scikit-learn's tol (1e-3) stopped at -1140.55 and
    # said "converged"; mclust (and select) reach -1126.33.
    model = tmp_path / "best.gmm"
    status, out, _ = _run(["select", FAITHFUL, "-G", "3", "-m", "EEE", "--out", model],
                          capsys)
    selected = float(out.split("log-likelihood")[1].splitlines()[1].split()[0])
    assert status == 0 and selected == pytest.approx(-1126.33, abs=0.01)
    for seed in ("0", "1"):
        status, out, _ = _run(["fit", FAITHFUL, "-k", "3", "--covariance", "EEE",
                               "--seed", seed], capsys)
        fitted = float(out.split("log-likelihood:")[1].split()[0])
        assert status == 0 and "converged:      yes" in out
        assert fitted == pytest.approx(selected, abs=0.01) and fitted >= selected - 1e-3
    # scikit-learn's own tolerance stops short on this data: why the default is tighter.
    status, out, _ = _run(["fit", FAITHFUL, "-k", "3", "--covariance", "EEE", "--seed",
                           "0", "--tol", "1e-3"], capsys)
    assert float(out.split("log-likelihood:")[1].split()[0]) < selected - 10


# ------------------------------------------------------------------ user errors
def _error_cases(tmp_path, model_file, data_csv):
    files = {
        "empty.csv": "",
        "text.csv": "u,v\n1,2\n3,abc\n",
        "nan.csv": "u,v\n1,2\n3,\n",
        "ragged.csv": "u,v\n1,2\n3,4,5\n",
        "three.csv": "a,b,c\n1,2,3\n4,5,6\n",
        "tiny.csv": "u,v\n1,2\n3,4\n",
        "bad.gmm": "not a model",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    t, m, d = str(tmp_path), str(model_file), str(data_csv)
    return [
        (["fit", f"{t}/absent.csv", "-k", "2"], "no such file"),
        (["fit", f"{t}/empty.csv", "-k", "2"], "empty"),
        (["fit", f"{t}/text.csv", "-k", "2"], "not numeric"),
        (["fit", f"{t}/nan.csv", "-k", "2"], "missing or non-finite"),
        (["fit", f"{t}/ragged.csv", "-k", "2"], "ragged"),
        (["fit", d, "-k", "2", "--columns", "nope"], "unknown column 'nope'"),
        (["fit", d, "-k", "0"], ">= 1"),
        (["fit", d, "-k", "2", "--covariance", "XXL"], "invalid choice"),
        (["fit", d, "-k", "2", "--bogus"], "unrecognized arguments"),
        (["fit", d, "-k", "2", "--tol", "-1"], "finite number >= 0"),
        (["fit", f"{t}/tiny.csv", "-k", "3"], "n_samples >= n_components"),
        (["fit", d, "-k", "2", "--out", d], "input files are never overwritten"),
        (["fit", d, "-k", "2", "--out", f"{t}/no/dir/m.gmm"], "does not exist"),
        (["predict", f"{t}/absent.gmm", d], "no such model file"),
        (["predict", f"{t}/bad.gmm", d], "invalid model file"),
        (["predict", m, f"{t}/three.csv"], "lacks column(s) 'u', 'v'"),
        (["predict", m, f"{t}/three.csv", "--columns", "a"], "has 1 column(s) but"),
        (["predict", m, d, "--out", m], "never overwritten"),
        (["score", m, d, "--out", f"{t}/x.csv"], "--out is for --per-row"),
        (["sample", m, "-n", "-3"], ">= 1"),
        (["plot", m, d, "--out", f"{t}/f.png", "--dims", "0", "0"], "--dims"),
        (["plot", m, d], "required: --out"),
    ]


def test_user_errors_print_one_line(tmp_path, model_file, data_csv, capsys):
    inputs = [data_csv, model_file]
    before = [_digest(p) for p in inputs]
    for argv, fragment in _error_cases(tmp_path, model_file, data_csv):
        status = main(argv)
        captured = capsys.readouterr()
        assert status != 0, argv
        line = _one_error_line(captured.err)
        assert fragment in line, (argv, line)
        assert captured.out == "", argv
    assert [_digest(p) for p in inputs] == before  # input files never modified


def test_input_files_are_never_modified(tmp_path, model_file, data_csv, capsys):
    inputs = [data_csv, model_file]
    before = [_digest(p) for p in inputs]
    stats = [os.stat(p).st_mtime_ns for p in inputs]
    m, d = str(model_file), str(data_csv)
    for argv in (["fit", d, "-k", "2", "--seed", "1"],
                 ["predict", m, d, "--out", str(tmp_path / "p.csv")],
                 ["score", m, d, "--per-row"],
                 ["sample", m, "-n", "5"]):
        assert main(argv) == 0
    capsys.readouterr()
    assert [_digest(p) for p in inputs] == before
    assert [os.stat(p).st_mtime_ns for p in inputs] == stats


def _saved_with_npy_data(model, tmp_path, X):
    """Paths of ``model`` saved from Python and of X as a .npy file (no column names)."""
    path = tmp_path / "py.gmm"
    save(model, path)
    npy = tmp_path / "x.npy"
    np.save(npy, X)
    return str(path), str(npy)


def _cli_labels(model, data, capsys):
    assert main(["predict", model, data]) == 0
    return _read_csv(capsys.readouterr().out)["label"]


def test_model_file_saved_by_python_is_used_by_the_cli(tmp_path, X, capsys):
    # No feature names (fitted on an array): the CLI matches columns by position.
    gm = GaussianMixture(2, random_state=0).fit(X)
    model, npy = _saved_with_npy_data(gm, tmp_path, X)
    np.testing.assert_array_equal(_cli_labels(model, npy, capsys), gm.predict(X))
    assert main(["sample", model, "-n", "3"]) == 0
    assert list(_read_csv(capsys.readouterr().out).columns) == ["x0", "x1"]


def test_mixture_model_file_is_used_by_the_cli(tmp_path, X, capsys):
    _mixture = pytest.importorskip("gaussmix._mixture")
    rng = np.random.default_rng(0)
    mixture = _mixture.Mixture(
        _mixture.Gauss(rng.standard_normal(2) * 4, np.eye(2), 1 / 3) for _ in range(3)
    )
    mixture.fit(X, n_steps=20)
    model, npy = _saved_with_npy_data(mixture, tmp_path, X)
    np.testing.assert_array_equal(_cli_labels(model, npy, capsys), mixture.predict(X))
    assert main(["score", model, npy]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(
        mixture.log_likelihood(X) / len(X), rel=1e-12)
