"""mclust's covariance models against R's mclust 6.0.0 and against their definitions.

References: tests/data/mclust_reference (iris, faithful; see its README) and
tests/data/mclust (more tables, computed by tests/data/mclust/make_reference.R).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scipy.linalg import expm

from gaussmix._models.registry import get_model
from gaussmix._mclust.em import mclust_em, mclust_mstep, single_component
from gaussmix._models.mclust import (
    MCLUST_MODELS,
    MclustFitError,
    mclust_bic,
    model_family,
    model_stats_kind,
    n_mclust_params,
    n_var_params,
)
from gaussmix._models.prior import PRIOR_MODELS, default_prior, prior_control
from gaussmix._engine.stats import stats_from_resp

from mclust_reference import MCLUST_REFERENCE, reference_data

REF = MCLUST_REFERENCE
LOCAL = Path(__file__).parent / "data" / "mclust"

_numeric = reference_data


@pytest.fixture(scope="module")
def iris():
    return _numeric("iris")


@pytest.fixture(scope="module")
def faithful():
    return _numeric("faithful")


def _hclass(path):
    table = pd.read_csv(path)
    if table.columns[0].startswith("Unnamed") or table.columns[0] == "":
        table = table.iloc[:, 1:]
    return table.to_numpy(int)


# ---------------------------------------------------------------------------------------
# Per-model EM from the iris G = 3 start (README of the reference data)

IRIS_G3 = {
    "EII": (-401.80272819, 8), "VII": (-384.31680361, 10), "EEI": (-361.42949889, 36),
    "VEI": (-339.47192719, 16), "EVI": (-338.78947696, 10), "VVI": (-307.18083288, 14),
    "EEE": (-256.35474263, 27), "VEE": (-237.56086542, 14), "EVE": (-258.11504559, 10),
    "VVE": (-238.04276857, 23), "EEV": (-232.19907364, 51), "VEV": (-186.07404787, 44),
    "EVV": (-222.79462707, 51), "VVV": (-180.18583874, 32),
}


@pytest.mark.parametrize("model", MCLUST_MODELS)
def test_iris_g3_loglik_and_iterations_match_mclust(iris, model):
    start = _hclass(REF / "iris_hclass_VVV_SVD_G1to9.csv")[:, 2] - 1
    fit = mclust_em(iris, model, start)
    want, iterations = IRIS_G3[model]
    assert fit.loglik == pytest.approx(want, rel=1e-6)
    assert fit.n_iter == iterations
    assert fit.converged
    np.testing.assert_allclose(fit.z.sum(axis=1), 1.0)
    # weights are n_k / n of the last E-step's responsibilities' M-step
    assert fit.params.weights.sum() == pytest.approx(1.0)


def test_iris_single_component_logliks(iris):
    want = {"XII": -889.51613071, "XXI": -741.01753519, "XXX": -379.91463012}
    for name, value in want.items():
        assert single_component(iris, name)[1] == pytest.approx(value, rel=1e-9)
    # G = 1 through mclust_em: every model falls into its closed-form class
    ones = np.zeros(len(iris), dtype=int)
    for model in MCLUST_MODELS:
        cls = {"EII": "XII", "VII": "XII"}.get(model, "XXI" if model[2] == "I" else "XXX")
        assert mclust_em(iris, model, ones).loglik == pytest.approx(want[cls], rel=1e-9)


def test_headline_df_from_reference_readme():
    # README: VEV, G=2 on iris has df 26; EEE, G=3 on faithful has df 11
    assert n_mclust_params("VEV", 2, 4) == 26
    assert n_mclust_params("EEE", 3, 2) == 11
    assert n_mclust_params("VEV", 2, 4, noise=True) == 28
    assert n_mclust_params("VVV", 3, 2, equal_pro=True) == 15
    # VVV's count written out the obvious way: means, proportions, K full covariances
    for d in range(1, 6):
        for G in range(1, 6):
            assert n_mclust_params("VVV", G, d) == G * d + (G - 1) + G * d * (d + 1) // 2
            assert n_mclust_params("EII", G, d) == G * d + (G - 1) + 1


# ---------------------------------------------------------------------------------------
# Whole BIC tables: every G = 1..9 from that G's hc partition, NaN where mclust has NA

def _bic_table(X, starts, models, prior=None):
    n, d = X.shape
    out = pd.DataFrame(index=range(1, 10), columns=models, dtype=float)
    for G in range(1, 10):
        for model in models:
            try:
                fit = mclust_em(X, model, starts[:, G - 1] - 1, prior=prior)
            except MclustFitError:
                out.loc[G, model] = np.nan
            else:
                out.loc[G, model] = mclust_bic(fit.loglik, model, G, n, d)
    return out


def _compare_tables(got, want, atol=0.01):
    want = want.loc[got.index, got.columns]
    assert np.array_equal(np.isnan(got.to_numpy()), np.isnan(want.to_numpy())), (
        f"NaN cells differ:\n{got}\n{want}")
    diff = (got - want).abs()
    worst = np.nanmax(diff.to_numpy())
    assert worst <= atol, f"max |BIC - mclust| = {worst}\n{diff}"


@pytest.mark.parametrize("data", ["iris", "faithful"])
def test_bic_table_matches_mclust(data):
    X = _numeric(data)
    starts = _hclass(REF / f"{data}_hclass_VVV_SVD_G1to9.csv")
    want = pd.read_csv(REF / f"{data}_BIC_SVD.csv", index_col=0)
    assert np.isnan(want.to_numpy()).any() == (data == "iris")  # iris has NA cells
    got = _bic_table(X, starts, list(MCLUST_MODELS))
    _compare_tables(got, want)


@pytest.mark.parametrize("data", ["iris", "faithful"])
def test_bic_table_with_default_prior_matches_mclust(data):
    X = _numeric(data)
    starts = _hclass(REF / f"{data}_hclass_VVV_SVD_G1to9.csv")
    want = pd.read_csv(LOCAL / f"{data}_BIC_prior.csv", index_col=0)
    assert set(want.columns) == PRIOR_MODELS - {"E", "V"}
    got = _bic_table(X, starts, list(want.columns), prior=prior_control())
    _compare_tables(got, want)


def test_iris_g3_with_prior_matches_mclust(iris):
    start = _hclass(REF / "iris_hclass_VVV_SVD_G1to9.csv")[:, 2] - 1
    want = pd.read_csv(LOCAL / "iris_G3_prior_loglik.csv", index_col=0)
    for model, (loglik, iterations) in want.iterrows():
        fit = mclust_em(iris, model, start, prior=prior_control())
        assert fit.loglik == pytest.approx(loglik, rel=1e-9), model
        assert fit.n_iter == iterations, model


def test_sim3_tables_match_mclust():
    """Simulated 3-D data (not seen while writing the code), with and without the prior."""
    X = pd.read_csv(LOCAL / "sim3.csv").to_numpy(float)
    starts = _hclass(LOCAL / "sim3_hclass.csv")
    want = pd.read_csv(LOCAL / "sim3_BIC.csv", index_col=0)
    _compare_tables(_bic_table(X, starts, list(MCLUST_MODELS)), want)
    want = pd.read_csv(LOCAL / "sim3_BIC_prior.csv", index_col=0)
    _compare_tables(_bic_table(X, starts, list(want.columns), prior=prior_control()), want)


def test_sim6_table_matches_mclust():
    """Six dimensions (300 rows, four Gaussians with random covariances, drawn in R)."""
    X = pd.read_csv(LOCAL / "sim6.csv").to_numpy(float)
    starts = _hclass(LOCAL / "sim6_hclass.csv")
    want = pd.read_csv(LOCAL / "sim6_BIC.csv", index_col=0)
    _compare_tables(_bic_table(X, starts, list(MCLUST_MODELS)), want)


def test_univariate_e_and_v_match_mclust(faithful):
    w = faithful[:, [1]]
    starts = _hclass(LOCAL / "waiting_qclass.csv")
    for suffix, prior in (("", None), ("_prior", prior_control())):
        want = pd.read_csv(LOCAL / f"waiting_BIC{suffix}.csv", index_col=0)
        got = _bic_table(w, starts, ["E", "V"], prior=prior)
        _compare_tables(got, want, atol=1e-6)


@pytest.mark.parametrize("model", MCLUST_MODELS)
def test_noise_component_matches_mclust(faithful, model):
    want = pd.read_csv(LOCAL / "faithful_noise_G3.csv", index_col=0).loc[model]
    labels = _hclass(REF / "faithful_hclass_VVV_SVD_G1to9.csv")[:, 2] - 1
    noise = (np.arange(1, len(faithful) + 1) % 10 == 0).astype(float)
    z = np.column_stack([np.eye(3)[labels] * (1 - noise)[:, None], noise])
    fit = mclust_em(faithful, model, z, noise_vinv=want["Vinv"])
    assert fit.loglik == pytest.approx(want["loglik"], rel=1e-9)
    assert fit.n_iter == want["iterations"]
    assert fit.noise_proportion == pytest.approx(want["noise_pro"], rel=1e-7)
    assert fit.params.weights.sum() + fit.noise_proportion == pytest.approx(1.0)
    assert fit.z.shape == (len(faithful), 4)


# ---------------------------------------------------------------------------------------
# Failures are mclust's NA: clear exceptions

def test_vanishing_component_raises(iris):
    z = np.zeros((len(iris), 3))
    z[:, 0] = 1.0
    z[:75, 1], z[:75, 0] = 1.0, 0.0
    for model in ("EII", "VVV", "VEV", "EVE"):
        with pytest.raises(MclustFitError, match="vanished"):
            mclust_em(iris, model, z)


@pytest.mark.parametrize("model", MCLUST_MODELS)
def test_singular_covariance_raises(model):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    labels = np.repeat([0, 1], 20)
    if model == "EII":
        X[:20], X[20:] = X[0], X[20]  # every component collapsed to a point
    elif model == "VII":
        X[:20] = X[0]  # one component collapsed to a point
    else:
        X[:20, 2], X[20:, 2] = 1.0, 2.0  # no spread along the last axis within components
    with pytest.raises(MclustFitError, match="singular|sigma-squared"):
        mclust_em(X, model, labels)


# ---------------------------------------------------------------------------------------
# Model structure: each model's covariances satisfy its constraint

def _decompose(model, covs):
    """(lambda_k, A_k, D_k) of Sigma_k = lambda_k D_k diag(A_k) D_k^T, checking the
    model's constraints on volume, shape and orientation along the way."""
    K, d, _ = covs.shape
    lam = np.exp(np.linalg.slogdet(covs)[1] / d)
    volume, shape, orient = model
    if orient == "I":
        off = covs - np.einsum("kii->ki", covs)[:, :, None] * np.eye(d)
        assert np.abs(off).max() <= 1e-12 * np.abs(covs).max()
        D = np.broadcast_to(np.eye(d), (K, d, d)).copy()
        A = np.einsum("kii->ki", covs) / lam[:, None]
    elif orient == "E":
        _, vecs = np.linalg.eigh(covs[0])
        D = np.broadcast_to(vecs[:, ::-1], (K, d, d)).copy()
        rot = np.einsum("ji,kjl,lm->kim", D[0], covs, D[0])
        off = rot - np.einsum("kii->ki", rot)[:, :, None] * np.eye(d)
        assert np.abs(off).max() <= 1e-8 * np.abs(covs).max(), "orientations differ"
        A = np.einsum("kii->ki", rot) / lam[:, None]
    else:
        vals, vecs = np.linalg.eigh(covs)
        D = vecs[:, :, ::-1]
        A = vals[:, ::-1] / lam[:, None]
    if volume == "E":
        np.testing.assert_allclose(lam, lam[0], rtol=1e-9)
    if shape == "E":
        np.testing.assert_allclose(A, np.broadcast_to(A[0], A.shape), rtol=1e-7, atol=1e-12)
    if shape == "I":
        np.testing.assert_allclose(A, 1.0, rtol=1e-9)
    np.testing.assert_allclose(np.prod(A, axis=1), 1.0, rtol=1e-9)
    return lam, A, D


def _full(params):
    c, K, d = params.covariances, params.n_components, params.n_features
    if params.family == "full":
        return c
    if params.family == "tied":
        return np.broadcast_to(c, (K, d, d)).copy()
    if params.family == "diag":
        return c[:, :, None] * np.eye(d)
    return c[:, None, None] * np.eye(d)


@pytest.mark.parametrize("model", MCLUST_MODELS)
def test_covariances_satisfy_model_constraint(iris, model):
    start = _hclass(REF / "iris_hclass_VVV_SVD_G1to9.csv")[:, 2] - 1
    params = mclust_em(iris, model, start).params
    assert params.family == model_family(model)
    _decompose(model, _full(params))
    if model in ("EEE", "EEV", "VEE", "VEV", "EVE", "VVE", "EVV"):
        # the constraint binds: the fit is not the unconstrained (VVV) one
        assert not np.allclose(_full(params), _full(mclust_em(iris, "VVV", start).params))


# ---------------------------------------------------------------------------------------
# Property tests: the M-step maximises the expected complete-data log-likelihood over its
# model class, and EM never lowers the log-likelihood

def _expected_complete_loglik(stats_full, weights, means, covs):
    nk, xbar, W = stats_full.nk, stats_full.means, stats_full.scatter
    d = xbar.shape[1]
    _, logdet = np.linalg.slogdet(covs)
    inv = np.linalg.inv(covs)
    diff = xbar - means
    scatter_about_mu = W + nk[:, None, None] * diff[:, :, None] * diff[:, None, :]
    trace = np.einsum("kij,kji->k", inv, scatter_about_mu)
    return float(np.sum(nk * np.log(weights) - 0.5 * nk * (d * math.log(2 * math.pi) + logdet)
                        - 0.5 * trace))


def _perturb(model, lam, A, D, rng, size):
    K, d = A.shape
    volume, shape, orient = model
    lam = lam * np.exp(size * (rng.normal() if volume == "E" else rng.normal(size=K)))
    if shape != "I":
        delta = size * (rng.normal(size=d) if shape == "E" else rng.normal(size=(K, d)))
        delta = np.broadcast_to(delta, (K, d))
        A = A * np.exp(delta - delta.mean(axis=1, keepdims=True))
    if orient != "I":
        def rotation():
            s = rng.normal(size=(d, d)) * size
            return expm(s - s.T)
        if orient == "E":
            D = rotation() @ D[0]
            D = np.broadcast_to(D, (K, d, d))
        else:
            D = np.stack([rotation() @ Dk for Dk in D])
    return np.einsum("kij,kj,klj->kil", D, lam[:, None] * A, D)


@st.composite
def _problems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    K = draw(st.integers(2, 3))
    d = draw(st.integers(2, 4))
    rng = np.random.default_rng(seed)
    n = 40 * K
    centres = rng.normal(scale=3.0, size=(K, d))
    X = centres[rng.integers(0, K, n)] + rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    resp = rng.dirichlet(np.ones(K) * 0.7, size=n)
    return X, resp, rng


@pytest.mark.parametrize("model", MCLUST_MODELS)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=_problems())
def test_mstep_maximises_expected_complete_loglik(model, problem):
    X, resp, rng = problem
    full = stats_from_resp(X, resp, "full")
    stats = stats_from_resp(X, resp, model_stats_kind(model))
    params = mclust_mstep(model, stats)
    covs = _full(params)
    lam, A, D = _decompose(model, covs)
    best = _expected_complete_loglik(full, params.weights, params.means, covs)
    # the obvious maximisers: n_k / n and the weighted means
    np.testing.assert_allclose(params.weights, full.nk / full.nk.sum())
    np.testing.assert_allclose(params.means, full.means, atol=1e-10)
    for size in (0.3, 0.03):
        for _ in range(4):
            if model == "VVE":
                # mclust's VVE orientation step weighs components by their det-1 shapes
                # only, so only volumes, shapes, means and weights are at their optimum
                lam2, A2 = lam, A
                other = _perturb("VVI", lam2, A2, np.eye(D.shape[1])[None].repeat(len(A), 0),
                                 rng, size)
                cand = np.einsum("kij,kjl,kml->kim", D, other, D)
            else:
                cand = _perturb(model, lam, A, D, rng, size)
            w = params.weights * np.exp(size * rng.normal(size=len(lam)))
            w /= w.sum()
            mu = params.means + size * rng.normal(size=params.means.shape)
            for cw, cmu, ccov in ((params.weights, params.means, cand), (w, params.means, covs),
                                  (params.weights, mu, covs)):
                value = _expected_complete_loglik(full, cw, cmu, ccov)
                assert value <= best + 1e-9 * abs(best), (size, best - value)


@pytest.mark.parametrize("model", [m for m in MCLUST_MODELS if m != "VVE"])
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=_problems())
def test_em_never_lowers_the_loglik(model, problem):
    X, resp, _ = problem
    labels = resp.argmax(axis=1)
    if np.bincount(labels, minlength=resp.shape[1]).min() < X.shape[1] + 2:
        return
    try:
        fit = mclust_em(X, model, labels, tol=1e-10, max_iter=60)
    except MclustFitError:
        return
    steps = np.diff(fit.history)
    assert steps.min() >= -1e-9 * abs(fit.loglik), steps.min()


def test_vve_follows_mclust_even_where_mclust_lowers_the_loglik():
    """mclust's VVE is not monotone (see docs/mclust_models.md): we follow its path."""
    data = pd.read_csv(LOCAL / "vve_data.csv")
    X, labels = data[["x1", "x2", "x3"]].to_numpy(float), data["label"].to_numpy(int) - 1
    want = pd.read_csv(LOCAL / "vve_R_history.csv")["loglik"].to_numpy()
    fit = mclust_em(X, "VVE", labels, tol=1e-10, max_iter=60)
    np.testing.assert_allclose(fit.history, want, rtol=1e-9)
    assert np.diff(want).min() < -1e-6  # mclust itself goes down here


# ---------------------------------------------------------------------------------------
# The registry: every model found by name, with the family and stats layout of the brief

def test_registry_has_every_model_with_its_family():
    families = {"EII": "spherical", "VII": "spherical", "EEI": "diag", "VEI": "diag",
                "EVI": "diag", "VVI": "diag", "EEE": "tied"}
    stats = {"EII": "diag", "VII": "diag", "EEI": "diag", "VEI": "diag", "EVI": "diag",
             "VVI": "diag", "EEE": "tied"}
    for name in MCLUST_MODELS + ("E", "V"):
        model = get_model(name)
        assert model.family == families.get(name, "spherical" if name in "EV" else "full")
        assert model.stats_kind == stats.get(name, "diag" if name in "EV" else "full")
        for K, d in ((1, 3), (4, 2), (3, 5)):
            if name in ("E", "V") and d != 1:
                continue
            assert model.n_cov_parameters(K, d) == n_var_params(name, K, d)


@pytest.mark.parametrize("model", ["EEI", "VEI", "EVI", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV"])
def test_registry_estimate_equals_mclust_mstep_without_regularisation(iris, model):
    resp = np.random.default_rng(1).dirichlet(np.ones(3), size=len(iris))
    stats = stats_from_resp(iris, resp, model_stats_kind(model))
    entry = get_model(model)
    covs = entry.estimate(stats, stats.nk, 0.0, None)
    np.testing.assert_allclose(covs, mclust_mstep(model, stats).covariances,
                               rtol=1e-6, atol=1e-12)
    # with reg_covar the constraint still holds (the scatter is regularised)
    reg = entry.estimate(stats, stats.nk, 1e-2, None)
    full = reg if reg.ndim == 3 else reg[:, :, None] * np.eye(4)
    _decompose(model, full)


def test_default_prior_matches_mclust_definition(iris):
    p = default_prior(iris, 3, "VVV")
    assert p.shrinkage == 0.01 and p.dof == 6
    np.testing.assert_allclose(p.mean, iris.mean(axis=0))
    np.testing.assert_allclose(p.scale, np.cov(iris.T) * (1 / 3) ** (2 / 4))
    q = default_prior(iris, 2, "VEI")
    assert np.isscalar(q.scale) or np.ndim(q.scale) == 0
    assert q.scale == pytest.approx((1 / 2) ** (2 / 4) * np.var(iris, axis=0, ddof=1).sum() / 4)
    e = default_prior(iris[:, 0], 4, "E")
    assert e.dof == 3 and e.scale == pytest.approx(np.var(iris[:, 0], ddof=1) / 16)
    with pytest.raises(ValueError, match="not available"):
        mclust_em(iris, "EVE", np.arange(150) % 2, prior=prior_control())


# ---------------------------------------------------------------------------------------
# Issue 19: the cells that differed from mclust (tests/data/mclust_cells, its README)

CELLS = Path(__file__).parent / "data" / "mclust_cells"

# Cells whose mclust value is not a property of the data: with the columns reordered
# (nothing changes in exact arithmetic) mclust itself returns other values or NA from
# the same start (column_orders.csv). EEV: a component with fewer points than
# dimensions has a singular scatter whose null-space orientation is whatever the SVD
# returns; VEE: mclust's positive-definiteness test of a rank-deficient scatter (5
# points in 5 dimensions) passes or fails by rounding. Documented in
# docs/mclust_models.md.
ORDER_DEPENDENT = {"wine": {("EEV", 7), ("EEV", 8), ("EEV", 9)},
                   "swiss": {("EEV", 7), ("EEV", 8), ("EEV", 9)},
                   "thyroid": {("VEE", 9)}}


def _cells_data(name):
    return pd.read_csv(CELLS / f"{name}.csv").to_numpy(float)


@pytest.mark.parametrize("name", ["wine", "swiss", "thyroid", "const_normal"])
def test_issue19_bic_tables_match_mclust(name):
    import gaussmix

    reference = pd.read_csv(CELLS / f"{name}_BIC.csv", index_col=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # const_normal: the constant-column note
        ours = gaussmix.select(_cells_data(name)).bic
    skip = ORDER_DEPENDENT.get(name, set())
    compared = 0
    for G in reference.index:
        for model in reference.columns:
            if (model, G) in skip:
                continue
            r, o = reference.loc[G, model], ours.loc[G, model]
            assert np.isnan(r) == np.isnan(o), (name, model, G, r, o)
            if not np.isnan(r):
                assert abs(r - o) <= 0.01, (name, model, G, r, o)
                compared += 1
    finite = int(reference.notna().to_numpy().sum()) - len(skip)
    assert compared == finite >= 30


def test_issue19_order_dependent_cells_are_so_in_mclust():
    # What ORDER_DEPENDENT rests on, read from R's runs: each left-out cell changes by
    # more than 1 BIC (a hundred times the comparison's tolerance), or between a value
    # and NA, when mclust sees the columns reordered.
    orders = pd.read_csv(CELLS / "column_orders.csv")
    for name, cells in ORDER_DEPENDENT.items():
        for model, G in cells:
            bic = orders.query("data == @name and model == @model and G == @G").BIC
            assert len(bic) >= 3
            assert bic.isna().any() and bic.notna().any() or bic.max() - bic.min() > 1


def test_thyroid_vee9_starts_with_a_singular_scatter():
    # The cell mclust reports as -5272.99 (and as NA for 3 of 5 column orders): its
    # starting partition has a class of 5 rows in 5 dimensions, whose scatter has rank 4.
    from gaussmix._mclust.hc import starting_partitions

    X = _cells_data("thyroid")
    labels = np.asarray(starting_partitions(X, [9])[9])
    small = np.flatnonzero(np.bincount(labels) <= X.shape[1])
    assert small.size == 1 and np.sum(labels == small[0]) == X.shape[1]
    rows = X[labels == small[0]]
    s = np.linalg.svd(rows - rows.mean(axis=0), compute_uv=False)
    assert s[-1] / s[0] < 1e-12


def test_one_component_on_a_constant_column_as_mclust():
    # mclust's mvn: mean = sum of (1/n) x_i; finite where that misses the constant, NA
    # where it hits it. R's numbers in constant_column_mvn.csv.
    reference = pd.read_csv(CELLS / "constant_column_mvn.csv")
    for row in reference.itertuples():
        X = _cells_data(row.data)
        if np.isnan(row.loglik):
            with pytest.raises(MclustFitError):
                single_component(X, row._2)
        else:
            _, loglik = single_component(X, row._2)
            assert loglik == pytest.approx(row.loglik, abs=1e-6)


def test_mclust_mean_of_a_constant_column_is_the_sum_in_order():
    from gaussmix._models.numerics import _mvn_constant_columns

    for c, n in [(3.0, 100), (0.1, 178), (1 / 3, 1000), (0.5, 64), (-7.25, 37)]:
        step, total = 1.0 / n, 0.0
        for _ in range(n):  # mclust's ddot(n, 1/n, 0, x, 1), written out
            total += step * c
        mean, scatter = _mvn_constant_columns(n, np.array([c, 1.0]),
                                              np.array([[0.0, 0.0], [0.0, 2.0]]))
        assert mean[0] == total and mean[1] == 1.0
        assert scatter[0, 0] == n * (c - total) ** 2 and scatter[1, 1] == 2.0
