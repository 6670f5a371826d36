"""The object model (Gauss, Mixture) against SciPy, scikit-learn and the slow reference."""

import copy
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from gaussmix import EmptyComponentWarning, Gauss, GaussianMixture, Mixture
from reference_em import reference_em


@pytest.fixture
def blobs():
    X, y = make_blobs(n_samples=150, centers=3, random_state=7)
    return X, y


def random_start(seed=0, d=2, k=3):
    rng = np.random.default_rng(seed)
    return Mixture(Gauss(rng.standard_normal(d) * 4, np.eye(d), 1 / k) for _ in range(k))


def data_start(X, seed=0, k=3):
    """A start with every component near some data, so none empties (where
    gaussmix re-seeds and scikit-learn does not)."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(X), size=k, replace=False)
    weights = rng.dirichlet(np.full(k, 5.0))
    return Mixture(Gauss(X[i] + rng.standard_normal(X.shape[1]), spd(rng, X.shape[1]), w)
                   for i, w in zip(rows, weights))


def spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T + d * np.eye(d) * 0.3


def reference_log_resp(X, weights, means, covs):
    logp = np.column_stack([
        np.log(w) + stats.multivariate_normal(m, c).logpdf(X)
        for w, m, c in zip(weights, means, covs)
    ])
    norm = logsumexp(logp, axis=1)
    return logp - norm[:, None], norm


# ------------------------------------------------------------------- Gauss
def test_gauss_repr_as_in_the_issue():
    g = Gauss([0.1, 2.3], np.eye(2), 1 / 3)
    assert repr(g) == "Gauss(mu=[0.1, 2.3], cov=[[1.0, 0.0], [0.0, 1.0]], pi=0.33)"
    assert g.r is None


def test_repr_rounds_but_keeps_tiny_values_visible():
    g = Gauss([-0.0, 1234.5678], [[2e-7, 0.0], [0.0, 1.0]], 0.5)
    assert repr(g) == "Gauss(mu=[0.0, 1234.57], cov=[[2e-07, 0.0], [0.0, 1.0]], pi=0.5)"
    again = eval(repr(Gauss([1.5, -2.25], [[2.0, 0.5], [0.5, 1.0]], 0.25)))
    np.testing.assert_array_equal(again.mu, [1.5, -2.25])
    np.testing.assert_array_equal(again.cov, [[2.0, 0.5], [0.5, 1.0]])


def test_gauss_density_matches_scipy():
    rng = np.random.default_rng(1)
    cov = spd(rng, 3)
    mu = rng.standard_normal(3)
    X = rng.standard_normal((40, 3)) * 3
    g = Gauss(mu, cov, 0.4)
    ref = stats.multivariate_normal(mu, cov)
    np.testing.assert_allclose(g.log_p(X), ref.logpdf(X), rtol=1e-12)
    np.testing.assert_allclose(g.p(X), ref.pdf(X), rtol=1e-12)
    far = X + 1e4  # p underflows to 0, log_p stays finite and exact
    assert np.all(g.p(far) == 0)
    np.testing.assert_allclose(g.log_p(far), ref.logpdf(far), rtol=1e-12)


def test_gauss_accepts_scalar_and_diagonal_covariances():
    np.testing.assert_array_equal(Gauss([0, 0], 2.0).cov, 2 * np.eye(2))
    np.testing.assert_array_equal(Gauss([0, 0], [1.0, 3.0]).cov, np.diag([1.0, 3.0]))
    np.testing.assert_array_equal(Gauss([0, 0]).cov, np.eye(2))
    one = Gauss(1.0, 4.0)
    np.testing.assert_allclose(one.log_p([1.0, 3.0]),
                               stats.norm(1.0, 2.0).logpdf([1.0, 3.0]))


@pytest.mark.parametrize("cov, message", [
    ([[1.0, 2.0], [2.0, 1.0]], "positive semi-definite"),
    ([[1.0, 0.5], [0.0, 1.0]], "symmetric"),
    ([[1.0, 0.0, 0.0]], "matrix"),
    ([[np.nan, 0.0], [0.0, 1.0]], "finite"),
])
def test_bad_covariances_raise_clear_errors(cov, message):
    with pytest.raises(ValueError, match=message):
        Gauss([0.0, 0.0], cov)


def test_bad_mu_and_pi_raise():
    with pytest.raises(ValueError, match="mu"):
        Gauss([[0.0, 1.0]], np.eye(2))
    with pytest.raises(ValueError, match="pi"):
        Gauss([0.0], 1.0, -0.5)
    g = Gauss([0.0, 0.0])
    with pytest.raises(ValueError, match="dimensions"):
        g.mu = [1.0, 2.0, 3.0]


def test_singular_initial_covariance_is_regularised_with_a_warning():
    with pytest.warns(UserWarning, match="singular"):
        g = Gauss([0.0, 0.0], [[1.0, 1.0], [1.0, 1.0]])
    eigenvalues = np.linalg.eigvalsh(g.cov)
    assert eigenvalues.min() > 0
    np.testing.assert_allclose(g.cov, [[1.0 + 1e-6, 1.0], [1.0, 1.0 + 1e-6]])
    assert np.all(np.isfinite(g.log_p(np.array([[0.0, 0.0], [1.0, -1.0]]))))
    with pytest.warns(UserWarning, match="singular"):
        zero = Gauss([0.0, 0.0], np.zeros((2, 2)))
    np.testing.assert_allclose(zero.cov, 1e-6 * np.eye(2))


def test_singular_covariance_at_large_scale_gets_enough_jitter():
    with pytest.warns(UserWarning, match="singular"):
        g = Gauss([0.0, 0.0], [[1e12, 1e12], [1e12, 1e12]])
    np.linalg.cholesky(g.cov)  # positive definite in floating point


def test_fit_from_a_singular_start_stays_finite(blobs):
    X, _ = blobs
    with pytest.warns(UserWarning, match="singular"):
        mixture = Mixture([Gauss(X[0], [[4.0, 4.0], [4.0, 4.0]], 1 / 3),
                           Gauss(X[1], np.eye(2), 1 / 3),
                           Gauss(X[2], np.eye(2), 1 / 3)])
    mixture.fit(X, n_steps=30)
    assert np.all(np.isfinite(mixture.log_likelihoods_))
    assert np.all(np.isfinite(mixture.covariances))


# ---------------------------------------------------------- list behaviour
def test_mixture_behaves_as_a_list():
    gs = [Gauss([i, 0.0], np.eye(2), 0.25) for i in range(4)]
    mixture = Mixture(g for g in gs[:3])
    assert len(mixture) == 3
    assert mixture[1] is gs[1] and mixture[-1] is gs[2]
    assert [g for g in mixture] == gs[:3]
    mixture.append(gs[3])
    assert len(mixture) == 4 and mixture[3] is gs[3]
    part = mixture[1:3]
    assert isinstance(part, Mixture) and list(part) == gs[1:3]
    del mixture[0]
    assert list(mixture) == gs[1:]
    assert gs[2] in mixture
    with pytest.raises(TypeError, match="Gauss"):
        mixture.append("not a gauss")
    with pytest.raises(ValueError, match="dimensions"):
        mixture.append(Gauss([0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="already in the mixture"):
        mixture.append(gs[1])
    mixture[0] = mixture[0]  # replacing a component by itself is fine


def test_mixture_repr():
    mixture = Mixture([Gauss([0, 0], np.eye(2), 0.5), Gauss([1, 1], np.eye(2), 0.5)])
    text = repr(mixture)
    assert text.startswith("Mixture([Gauss(mu=[0.0, 0.0]")
    assert text.endswith("pi=0.5)])")
    assert repr(mixture[1]) in text
    assert repr(Mixture()) == "Mixture([])"


# ---------------------------------------------------------------- the E-step
def test_expectation_sets_normalised_responsibilities(blobs):
    X, _ = blobs
    rng = np.random.default_rng(3)
    mixture = Mixture(Gauss(rng.standard_normal(2) * 4, spd(rng, 2), w)
                      for w in (0.2, 0.3, 0.5))
    log_likelihood = mixture.expectation(X)
    log_resp, norm = reference_log_resp(X, mixture.weights, mixture.means,
                                        mixture.covariances)
    resp = np.column_stack([g.r for g in mixture])
    np.testing.assert_allclose(resp, np.exp(log_resp), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0)
    assert log_likelihood == pytest.approx(norm.sum(), rel=1e-12)
    assert mixture.log_likelihoods_ == [log_likelihood]


def test_rows_far_from_every_component_never_give_nan():
    mixture = Mixture([Gauss([0, 0], np.eye(2), 0.5), Gauss([1, 0], np.eye(2), 0.5)])
    X = np.array([[1e3, 1e3], [-5e3, 0.0], [0.5, 0.0]])
    mixture.expectation(X)
    resp = np.column_stack([g.r for g in mixture])
    assert np.all(np.isfinite(resp))
    np.testing.assert_allclose(resp.sum(axis=1), 1.0)
    assert np.all(np.isfinite(mixture.log_p(X)))


def test_gauss_expectation_is_the_unnormalised_textbook_step():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((20, 2))
    g = Gauss([0.5, 0.0], np.eye(2), 0.3)
    log_r = g.expectation(X)
    ref = 0.3 * stats.multivariate_normal([0.5, 0.0], np.eye(2)).pdf(X)
    np.testing.assert_allclose(g.r, ref, rtol=1e-12)
    np.testing.assert_allclose(log_r, np.log(ref), rtol=1e-12)


# ------------------------------------------------- same numbers as the estimators
def estimator_kwargs(mixture, n_steps):
    return dict(
        n_components=len(mixture),
        weights_init=mixture.weights,
        means_init=mixture.means,
        precisions_init=np.linalg.inv(mixture.covariances),
        max_iter=n_steps,
        tol=0,
        init_params="random",
    )


@pytest.mark.parametrize("n_steps", [1, 5])
def test_em_steps_equal_gaussian_mixture_iterations(blobs, n_steps):
    X, _ = blobs
    mixture = data_start(X, seed=2)
    kwargs = estimator_kwargs(mixture, n_steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GaussianMixture(**kwargs).fit(X)
        theirs = SkGaussianMixture(**kwargs).fit(X)
    mixture.fit(X, n_steps=n_steps)
    for gm in (ours, theirs):
        np.testing.assert_allclose(mixture.weights, gm.weights_, rtol=1e-9, atol=1e-13)
        np.testing.assert_allclose(mixture.means, gm.means_, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(mixture.covariances, gm.covariances_, rtol=1e-9,
                                   atol=1e-11)
    assert mixture.n_iter_ == ours.n_iter_ == n_steps
    # gaussmix's lower_bounds_ are the mean log-likelihoods after each iteration.
    np.testing.assert_allclose(np.array(mixture.log_likelihoods_[1:]) / len(X),
                               ours.lower_bounds_, rtol=1e-10)


def test_fit_matches_the_slow_reference(blobs):
    X, _ = blobs
    mixture = data_start(X, seed=5)
    weights, means, covs = mixture.weights, mixture.means, mixture.covariances
    mixture.fit(X, n_steps=12)
    ref_w, ref_m, ref_c, ref_ll = reference_em(X, weights, means, covs, "full", 12)
    np.testing.assert_allclose(mixture.weights, ref_w, rtol=1e-8)
    np.testing.assert_allclose(mixture.means, ref_m, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(mixture.covariances, ref_c, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.array(mixture.log_likelihoods_) / len(X), ref_ll,
                               rtol=1e-10)


def test_component_maximization_equals_mixture_maximization(blobs):
    X, _ = blobs
    mixture = random_start(seed=1)
    mixture.expectation(X)
    textbook = copy.deepcopy(mixture)
    for g in textbook:  # as a textbook writes it, component by component
        g.maximize_mu(X)
        g.maximize_sigma(X)
        g.maximize_pi()
    mixture.maximization(X)
    for mine, theirs in zip(mixture, textbook):
        np.testing.assert_allclose(mine.mu, theirs.mu, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(mine.cov, theirs.cov, rtol=1e-10, atol=1e-12)
        assert mine.pi == pytest.approx(theirs.pi, rel=1e-10)
    # ... and both equal the obvious formulas.
    r = textbook[0].r  # maximization leaves the responsibilities in place
    nk = r.sum()
    mu = r @ X / nk
    cov = (r[:, None] * (X - mu)).T @ (X - mu) / nk + 1e-6 * np.eye(2)
    np.testing.assert_allclose(textbook[0].mu, mu, rtol=1e-10)
    np.testing.assert_allclose(textbook[0].cov, cov, rtol=1e-9)
    assert textbook[0].pi == pytest.approx(nk / len(X))


def test_maximization_needs_responsibilities(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="expectation"):
        random_start().maximization(X)


# -------------------------------------------------------------- robustness
def test_the_issue_example_runs_100_steps_uphill(blobs):
    X, _ = blobs
    np.random.seed(0)
    mixture = Mixture(Gauss(np.random.randn(2) * 4, np.eye(2), 1 / 3) for _ in range(3))
    assert mixture.fit(X) is mixture
    lls = np.array(mixture.log_likelihoods_)
    assert lls.shape == (101,) and mixture.n_iter_ == 100 and not mixture.converged_
    assert np.all(np.diff(lls) >= -1e-9 * np.abs(lls[1:]))  # EM never goes downhill
    np.testing.assert_allclose(np.column_stack([g.r for g in mixture]).sum(axis=1), 1)


def test_tol_stops_early(blobs):
    X, _ = blobs
    mixture = data_start(X, seed=2).fit(X, n_steps=500, tol=1e-3)
    assert mixture.converged_ and mixture.n_iter_ < 500
    lls = mixture.log_likelihoods_
    assert abs(lls[-1] - lls[-2]) / len(X) < 1e-3
    assert len(lls) == mixture.n_iter_ + 1
    start = data_start(X, seed=2)
    start.fit(X, n_steps=0)
    assert len(start.log_likelihoods_) == 1 and start.n_iter_ == 0


def test_component_started_far_from_the_data(blobs):
    X, _ = blobs
    mixture = Mixture([Gauss([1e3, 1e3], np.eye(2), 1 / 3),
                       Gauss([0.0, 0.0], np.eye(2), 1 / 3),
                       Gauss([5.0, 5.0], np.eye(2), 1 / 3)])
    kwargs = estimator_kwargs(mixture, 10)
    with pytest.warns(EmptyComponentWarning):
        mixture.fit(X, n_steps=10)
    assert np.all(np.isfinite(mixture.means)) and np.all(np.isfinite(mixture.covariances))
    assert np.all(np.isfinite(mixture.log_likelihoods_))
    assert np.all(np.abs(mixture.means) < 50)  # the far one was brought back
    # gaussmix's estimator re-seeds the same way, so the numbers still agree.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(**kwargs).fit(X)
    np.testing.assert_allclose(mixture.means, gm.means_, rtol=1e-8, atol=1e-10)


def test_collapsing_component_stays_positive_definite():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.standard_normal((60, 2)), np.tile([[8.0, 8.0]], (10, 1))])
    mixture = Mixture([Gauss([0, 0], np.eye(2), 0.5), Gauss([8, 8], 0.01, 0.5)])
    mixture.fit(X, n_steps=20)
    collapsed = mixture[1]
    np.testing.assert_allclose(collapsed.mu, [8.0, 8.0], atol=1e-9)
    np.testing.assert_allclose(collapsed.cov, 1e-6 * np.eye(2), rtol=1e-6, atol=1e-12)
    assert np.all(np.isfinite(mixture.log_likelihoods_))
    with pytest.raises(ValueError, match="reg_covar"):
        Mixture([Gauss([0, 0], np.eye(2), 0.5), Gauss([8, 8], 0.01, 0.5)],
                reg_covar=0).fit(X, n_steps=5)


def test_data_far_from_the_origin_fit_exactly(blobs):
    X, _ = blobs
    near = data_start(X, seed=2)
    far = Mixture(Gauss(g.mu + 1e8, g.cov, g.pi) for g in near)
    near.fit(X, n_steps=10)
    far.fit(X + 1e8, n_steps=10)
    np.testing.assert_allclose(far.means - 1e8, near.means, atol=1e-6)
    np.testing.assert_allclose(far.covariances, near.covariances, rtol=1e-6, atol=1e-8)


def test_one_dimensional_data():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-3, 1, 100), rng.normal(4, 0.5, 100)])
    mixture = Mixture([Gauss(-1.0, 1.0, 0.5), Gauss(1.0, 1.0, 0.5)]).fit(x, n_steps=50)
    means = np.sort(mixture.means[:, 0])
    np.testing.assert_allclose(means, [-3, 4], atol=0.3)


# ---------------------------------------------------------- prediction, sample
def test_prediction_matches_sklearn_with_the_same_parameters(blobs):
    X, _ = blobs
    gm = SkGaussianMixture(3, random_state=0).fit(X)
    mixture = Mixture.from_estimator(gm)
    np.testing.assert_allclose(mixture.log_p(X), gm.score_samples(X), rtol=1e-10)
    np.testing.assert_allclose(mixture.predict_proba(X), gm.predict_proba(X),
                               rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(mixture.predict(X), gm.predict(X))
    assert mixture.log_likelihood(X) == pytest.approx(gm.score(X) * len(X), rel=1e-10)
    assert all(g.r is None for g in mixture)  # prediction leaves r alone


def test_sample_follows_the_mixture():
    mixture = Mixture([Gauss([0, 0], [[1.0, 0.8], [0.8, 1.0]], 0.25),
                       Gauss([6, -2], [[0.5, 0.0], [0.0, 2.0]], 0.75)])
    X, labels = mixture.sample(20000, random_state=0)
    assert X.shape == (20000, 2) and labels.shape == (20000,)
    assert np.mean(labels == 1) == pytest.approx(0.75, abs=0.015)
    for k, g in enumerate(mixture):
        np.testing.assert_allclose(X[labels == k].mean(axis=0), g.mu, atol=0.06)
        np.testing.assert_allclose(np.cov(X[labels == k].T), g.cov, atol=0.08)
    again, _ = mixture.sample(5, random_state=0)
    np.testing.assert_array_equal(again, mixture.sample(5, random_state=0)[0])


# --------------------------------------------------------------- conversion
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_from_estimator_expands_every_covariance_type(blobs, covariance_type):
    X, _ = blobs
    for cls in (SkGaussianMixture, GaussianMixture):
        gm = cls(3, covariance_type=covariance_type, random_state=0).fit(X)
        mixture = Mixture.from_estimator(gm)
        assert len(mixture) == 3 and mixture.reg_covar == gm.reg_covar
        np.testing.assert_allclose(mixture.weights, gm.weights_)
        np.testing.assert_allclose(mixture.means, gm.means_)
        np.testing.assert_allclose(mixture.log_p(X), gm.score_samples(X), rtol=1e-10)


def test_from_estimator_needs_a_fitted_estimator():
    with pytest.raises(ValueError, match="fit it first"):
        Mixture.from_estimator(SkGaussianMixture(2))


def test_to_estimator_is_a_fitted_gaussian_mixture(blobs):
    X, _ = blobs
    mixture = data_start(X, seed=2).fit(X, n_steps=15)
    gm = mixture.to_estimator()
    assert isinstance(gm, GaussianMixture) and gm.covariance_type == "full"
    np.testing.assert_allclose(gm.weights_, mixture.weights)
    np.testing.assert_allclose(gm.means_, mixture.means)
    np.testing.assert_allclose(gm.covariances_, mixture.covariances)
    np.testing.assert_allclose(gm.precisions_, np.linalg.inv(mixture.covariances),
                               rtol=1e-9)
    # P = U U^T with U upper triangular, as scikit-learn stores it.
    u = gm.precisions_cholesky_
    np.testing.assert_allclose(u @ np.swapaxes(u, 1, 2), gm.precisions_, rtol=1e-9)
    assert np.allclose(np.tril(u, -1), 0)
    assert gm.n_iter_ == 15 and gm.converged_ is False and gm.n_features_in_ == 2
    assert gm.lower_bound_ == pytest.approx(mixture.log_likelihood(X) / len(X))
    assert len(gm.lower_bounds_) == 15
    np.testing.assert_allclose(gm.score_samples(X), mixture.log_p(X), rtol=1e-10)
    np.testing.assert_array_equal(gm.predict(X), mixture.predict(X))
    # Round trip, and refitting continues from the mixture's parameters.
    back = Mixture.from_estimator(gm)
    np.testing.assert_allclose(back.covariances, mixture.covariances)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        refit = gm.set_params(max_iter=1, tol=0).fit(X)
    one_more = copy.deepcopy(mixture).fit(X, n_steps=0)
    one_more.maximization(X)
    np.testing.assert_allclose(refit.means_, one_more.means, rtol=1e-9, atol=1e-11)


def test_to_estimator_before_fit():
    gm = random_start().to_estimator()
    assert gm.n_iter_ == 0 and gm.lower_bound_ == -np.inf and gm.lower_bounds_ == []
    assert gm.sample(10)[0].shape == (10, 2)


def test_from_estimator_with_every_registered_model():
    from gaussmix import model_names

    X, _ = make_blobs(n_samples=120, centers=3, random_state=0)
    for name in model_names():
        if name in ("E", "V"):  # one-dimensional models
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm = GaussianMixture(3, covariance_type=name, max_iter=5,
                                 random_state=0).fit(X)
        mixture = Mixture.from_estimator(gm)
        np.testing.assert_allclose(mixture.log_p(X), gm.score_samples(X), rtol=1e-9,
                                   err_msg=name)
