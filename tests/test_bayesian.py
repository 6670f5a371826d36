"""gaussmix.BayesianGaussianMixture against scikit-learn's, and its own promises."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SkBGM
from sklearn.utils.estimator_checks import check_estimator

from gaussmix import ArraySource, BayesianGaussianMixture

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
PRIOR_TYPES = ["dirichlet_process", "dirichlet_distribution"]


def _data(seed=0, n=(150, 100, 80)):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0, 1, (n[0], 3)), rng.normal(5, 1.5, (n[1], 3)),
                           rng.normal([0, 6, 0], 0.7, (n[2], 3))])


def _close(ours, theirs, rtol=1e-8):
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    scale = max(np.max(np.abs(theirs)), 1e-300)
    assert np.max(np.abs(ours - theirs)) <= rtol * scale


def test_passes_check_estimator():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(BayesianGaussianMixture(), on_fail=None)
    assert [r["check_name"] for r in results if r["status"] == "failed"] == []


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_same_numbers_as_sklearn(prior_type, covariance_type):
    """From the same k-means start: every fitted attribute within 1e-8 relative, the
    same iterations, predictions and densities."""
    X = _data()
    kw = dict(n_components=5, covariance_type=covariance_type,
              weight_concentration_prior_type=prior_type, random_state=0, max_iter=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = SkBGM(**kw).fit(X)
        ours = BayesianGaussianMixture(**kw).fit(X)
    assert ours.n_iter_ == theirs.n_iter_ and ours.converged_ == theirs.converged_
    for name in ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_",
                 "mean_precision_", "degrees_of_freedom_", "mean_prior_", "covariance_prior_"]:
        _close(getattr(ours, name), getattr(theirs, name))
    if prior_type == "dirichlet_process":
        for a, b in zip(ours.weight_concentration_, theirs.weight_concentration_):
            _close(a, b)
    else:
        _close(ours.weight_concentration_, theirs.weight_concentration_)
    # scikit-learn's tied lower bound is a 1-element array
    _close(ours.lower_bound_, np.sum(theirs.lower_bound_))
    _close(ours.lower_bounds_, [np.sum(b) for b in theirs.lower_bounds_])
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    _close(ours.score_samples(X), theirs.score_samples(X))
    _close(ours.predict_proba(X), theirs.predict_proba(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("seed", range(4))
def test_lower_bound_never_decreases(covariance_type, seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 5))
    X = rng.normal(size=(200, 2)) * rng.uniform(0.5, 3, 2) + rng.integers(0, 3, (200, 1)) * 4
    gm = BayesianGaussianMixture(
        n_components=k + 2, covariance_type=covariance_type, max_iter=100, tol=1e-8,
        weight_concentration_prior_type=PRIOR_TYPES[seed % 2], random_state=seed,
        init_params="random")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    bounds = np.asarray(gm.lower_bounds_)
    assert len(bounds) == gm.n_iter_
    assert np.all(np.diff(bounds) >= -1e-9 * np.abs(bounds[1:]))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_are_repeated_rows_and_zero_weight_is_absent(covariance_type):
    """Separated clusters, so that k-means starts both fits from the same partition
    (perhaps with other labels: the Dirichlet-distribution prior does not mind the
    order, the stick-breaking one does); zero-weight rows are far outliers that would
    drag the fit if they counted."""
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(c, 1.0, (n, 3)) for c, n in ((0, 60), (20, 50), (40, 40))])
    counts = rng.integers(0, 4, len(X))
    X[counts == 0] += 1e3
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0, tol=0.0,
              max_iter=30, weight_concentration_prior_type="dirichlet_distribution")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = BayesianGaussianMixture(**kw).fit(X, sample_weight=counts)
        repeated = BayesianGaussianMixture(**kw).fit(np.repeat(X, counts, axis=0))
    order, other = np.argsort(weighted.means_[:, 0]), np.argsort(repeated.means_[:, 0])
    for name in ["weights_", "means_", "mean_precision_"]:
        np.testing.assert_allclose(getattr(weighted, name)[order],
                                   getattr(repeated, name)[other], rtol=1e-10)
    np.testing.assert_allclose(weighted.covariance_prior_, repeated.covariance_prior_,
                               rtol=1e-10)
    np.testing.assert_allclose(weighted.lower_bound_, repeated.lower_bound_, rtol=1e-10)


def test_chunks_and_sources_give_the_same_fit():
    X = _data(seed=5)
    kw = dict(n_components=4, random_state=1, max_iter=200)
    whole = BayesianGaussianMixture(**kw).fit(X)
    chunked = BayesianGaussianMixture(**kw, chunk_size=37).fit(X)
    source = BayesianGaussianMixture(**kw).fit(ArraySource(X, None, 50))
    for other in (chunked, source):
        assert other.n_iter_ == whole.n_iter_
        np.testing.assert_allclose(other.means_, whole.means_, rtol=1e-10)
        np.testing.assert_allclose(other.lower_bound_, whole.lower_bound_, rtol=1e-12)


def test_warm_start_continues_from_the_fit():
    X = _data(seed=6)
    kw = dict(n_components=4, random_state=0, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        once = BayesianGaussianMixture(max_iter=20, **kw).fit(X)
        warm = BayesianGaussianMixture(max_iter=10, warm_start=True, **kw).fit(X)
        warm.fit(X)
    np.testing.assert_allclose(warm.means_, once.means_, rtol=1e-10)
    np.testing.assert_allclose(warm.lower_bound_, once.lower_bound_, rtol=1e-12)


def test_unused_components_get_negligible_weight():
    X = _data(seed=7)
    gm = BayesianGaussianMixture(n_components=8, weight_concentration_prior=1e-3,
                                 random_state=0, max_iter=500).fit(X)
    assert np.sum(gm.weights_ > 0.05) == 3


@pytest.mark.parametrize("params, message", [
    (dict(degrees_of_freedom_prior=1.5), "should be greater than 2"),
    (dict(mean_prior=[0.0, 1.0]), "should have the shape of (3,)"),
    (dict(covariance_prior=np.eye(2)), "should have the shape of (3, 3)"),
    (dict(covariance_prior=-np.eye(3)), "positive-definite"),
    (dict(covariance_type="diag", covariance_prior=[1.0, -1.0, 1.0]), "positive"),
])
def test_bad_priors_are_refused(params, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BayesianGaussianMixture(n_components=2, **params).fit(_data())


def test_dask_input_gives_the_in_memory_fit():
    """Weights are scaled for range inside the Dask source too; the posterior, which
    depends on how much data there is, must see them as given."""
    da = pytest.importorskip("dask.array")
    import dask

    X = _data(seed=8)
    w = np.random.default_rng(9).integers(1, 5, len(X)).astype(float) * 3.0
    kw = dict(n_components=3, random_state=0, max_iter=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        memory = BayesianGaussianMixture(**kw).fit(X, sample_weight=w)
        with dask.config.set(scheduler="threads"):
            lazy = BayesianGaussianMixture(**kw).fit(da.from_array(X, chunks=(100, 3)),
                                                     sample_weight=da.from_array(w, chunks=100))
    assert lazy.n_iter_ == memory.n_iter_
    np.testing.assert_allclose(lazy.means_, memory.means_, rtol=1e-10)
    np.testing.assert_allclose(lazy.mean_precision_, memory.mean_precision_, rtol=1e-10)
    np.testing.assert_allclose(lazy.lower_bound_, memory.lower_bound_, rtol=1e-10)


def test_pruning_keeps_the_components_the_data_need():
    """Three clusters, eight components under a small concentration: three effective
    components (the stick-breaking prior leaves two more holding a row each); the pruned
    GaussianMixture has their parameters and scores the data nearly as the maximum
    likelihood three-component fit does."""
    from gaussmix import GaussianMixture

    X = _data(seed=7)
    bgm = BayesianGaussianMixture(n_components=8, weight_concentration_prior=1e-3,
                                  random_state=0, max_iter=500).fit(X)
    assert bgm.n_effective_components_ == 3
    gm = bgm.to_gaussian_mixture()
    keep = bgm.weights_ >= 4 / len(X)  # n_features + 1 rows
    assert gm.n_components == 3 and np.isclose(gm.weights_.sum(), 1.0)
    np.testing.assert_allclose(gm.means_, bgm.means_[keep])
    np.testing.assert_allclose(gm.covariances_, bgm.covariances_[keep])
    direct = GaussianMixture(3, random_state=0).fit(X)  # maximum likelihood
    assert direct.score(X) - 0.05 < gm.score(X) <= direct.score(X)  # the prior's pull
    np.testing.assert_array_equal(gm.predict(X), np.argmax(bgm.predict_proba(X)[:, keep], 1))
    with pytest.raises(ValueError, match="Lower min_weight"):
        bgm.to_gaussian_mixture(min_weight=2.0)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_predictive_density_is_the_student_t_mixture(covariance_type):
    """predictive=True: log sum_k E[pi_k] St(x | m_k, L_k^-1, nu_k + 1 - D), against
    SciPy's multivariate_t with the posterior's parameters (Bishop, PRML 10.81); the
    default stays scikit-learn's."""
    from scipy.stats import multivariate_t

    X = _data(seed=10, n=(40, 30, 20))  # few rows: the predictive differs visibly
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0)
    plain = BayesianGaussianMixture(**kw).fit(X)
    gm = BayesianGaussianMixture(predictive=True, **kw).fit(X)
    d = X.shape[1]
    density = np.zeros(len(X))
    for k in range(3):
        nu = float(np.broadcast_to(gm.degrees_of_freedom_, (3,))[k])
        beta = gm.mean_precision_[k]
        w_inv = nu * (gm.covariances_[k] if covariance_type == "full" else gm.covariances_)
        df = nu + 1 - d
        shape = w_inv * (1 + beta) / (df * beta)
        density += gm.weights_[k] * multivariate_t(gm.means_[k], shape, df=df).pdf(X)
    np.testing.assert_allclose(gm.score_samples(X), np.log(density), rtol=1e-10)
    assert gm.score(X) == pytest.approx(np.mean(np.log(density)), rel=1e-10)
    assert not np.allclose(plain.score_samples(X), gm.score_samples(X), rtol=1e-3)
    with pytest.raises(ValueError, match="'full' or 'tied'"):
        BayesianGaussianMixture(n_components=2, covariance_type="diag",
                                predictive=True).fit(X).score_samples(X)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_data_far_from_the_origin_fit_as_near_it(covariance_type):
    """The statistics are sums about nearby points, and the update uses scatters and
    differences from the prior mean: shifting the data by 1e8 shifts the means only."""
    X = _data(seed=11)
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0, tol=0.0,
              max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        near = BayesianGaussianMixture(**kw).fit(X)
        far = BayesianGaussianMixture(**kw).fit(X + 1e8)
    np.testing.assert_allclose(far.means_ - 1e8, near.means_, atol=1e-6)
    np.testing.assert_allclose(far.covariances_, near.covariances_, rtol=1e-6)
    np.testing.assert_allclose(far.weights_, near.weights_, rtol=1e-6)


def test_plots_take_it():
    import matplotlib

    matplotlib.use("Agg")
    from gaussmix import plot

    X = _data(seed=12)
    bgm = BayesianGaussianMixture(n_components=4, random_state=0).fit(X)
    ax = plot.mixture(bgm, X, dims=(0, 1))
    assert len(ax.collections) >= 1  # the points
    # one ellipse per component, centred on its mean (matplotlib's, not our numbers)
    centres = np.array([p.center for p in ax.patches])
    assert len(centres) >= bgm.n_components
    for mean in bgm.means_[:, :2]:
        assert np.min(np.linalg.norm(centres - mean, axis=1)) < 1e-9


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_model_file_round_trip(prior_type, covariance_type, tmp_path):
    import gaussmix

    X = _data(seed=13)
    bgm = BayesianGaussianMixture(n_components=4, covariance_type=covariance_type,
                                  weight_concentration_prior_type=prior_type,
                                  random_state=0).fit(X)
    path = tmp_path / "model.gmm"
    gaussmix.save(bgm, path)
    back = gaussmix.load(path)
    assert type(back) is BayesianGaussianMixture
    assert back.get_params() == bgm.get_params()
    np.testing.assert_array_equal(back.score_samples(X), bgm.score_samples(X))
    np.testing.assert_array_equal(back.predict_proba(X), bgm.predict_proba(X))
    assert back.n_effective_components_ == bgm.n_effective_components_
    assert back.lower_bound_ == bgm.lower_bound_ and back.lower_bounds_ == bgm.lower_bounds_
    for name in ["mean_precision_", "degrees_of_freedom_", "mean_prior_", "covariance_prior_",
                 "weight_concentration_prior_", "degrees_of_freedom_prior_"]:
        np.testing.assert_array_equal(getattr(back, name), getattr(bgm, name))
    assert gaussmix.read_header(path)["kind"] == "BayesianGaussianMixture"


def test_model_file_with_a_changed_posterior_is_refused(tmp_path):
    """The stored weights must be the posterior mean of the stored concentration, and
    the posterior's values valid: a file changed in either is refused."""
    import io
    import zipfile

    import gaussmix

    X = _data(seed=14)
    bgm = BayesianGaussianMixture(n_components=3, random_state=0).fit(X)
    path = tmp_path / "model.gmm"
    gaussmix.save(bgm, path)
    def first_times_3(a):
        a = a.copy()
        a.flat[0] *= 3.0
        return a

    for name, change in [("weight_concentration", first_times_3),
                         ("mean_precision", lambda a: -a)]:
        changed = tmp_path / f"{name}.gmm"
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(changed, "w") as dst:
            for item in src.namelist():
                data = src.read(item)
                if item == name + ".npy":
                    array = np.load(io.BytesIO(data))
                    buffer = io.BytesIO()
                    np.save(buffer, change(array))
                    data = buffer.getvalue()
                dst.writestr(item, data)
        with pytest.raises(gaussmix.ModelFileError, match="weight_concentration|mean_precision"):
            gaussmix.load(changed)


def test_command_line_predicts_and_scores_with_its_model_file(tmp_path, capsys):
    import gaussmix
    from gaussmix.cli import main

    X = _data(seed=15)
    data = tmp_path / "x.csv"
    np.savetxt(data, X, delimiter=",", header="a,b,c", comments="")
    bgm = BayesianGaussianMixture(n_components=4, random_state=0).fit(X)
    gaussmix.save(bgm, tmp_path / "m.gmm")
    assert main(["score", str(tmp_path / "m.gmm"), str(data)]) == 0
    assert float(capsys.readouterr().out.split()[-1]) == pytest.approx(bgm.score(X), rel=1e-12)
    labels = tmp_path / "labels.csv"
    assert main(["predict", str(tmp_path / "m.gmm"), str(data), "--out", str(labels)]) == 0
    written = np.loadtxt(labels, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(written.reshape(len(X), -1)[:, 0], bgm.predict(X))


def test_command_line_fits_it(tmp_path, capsys):
    """gaussmix fit --bayesian: the estimator's fit, its summary, its model file."""
    import gaussmix
    from gaussmix.cli import main

    X = _data(seed=16)
    data = tmp_path / "x.csv"
    np.savetxt(data, X, delimiter=",", header="a,b,c", comments="")
    model = tmp_path / "m.gmm"
    assert main(["fit", str(data), "-k", "6", "--bayesian", "--weight-concentration",
                 "0.001", "--seed", "0", "--out", str(model), "--covariance", "VVV"]) == 0
    out = capsys.readouterr().out
    direct = BayesianGaussianMixture(n_components=6, weight_concentration_prior=0.001,
                                     random_state=0, tol=1e-5, max_iter=1000).fit(X)
    assert f"{direct.n_effective_components_} effective" in out
    assert f"lower bound:    {direct.lower_bound_:.6f}" in out
    saved = gaussmix.load(model)
    assert type(saved) is BayesianGaussianMixture and saved.covariance_type == "full"
    np.testing.assert_allclose(saved.means_, direct.means_, rtol=1e-12)
    assert main(["fit", str(data), "-k", "2", "--weight-concentration", "1"]) != 0
    assert "--weight-concentration needs --bayesian" in capsys.readouterr().err
    assert main(["fit", str(data), "-k", "2", "--bayesian", "--covariance", "VEV"]) != 0
    assert "--bayesian fits covariance full, tied, diag or spherical" in capsys.readouterr().err
