"""The covariance-model registry: every fact of a model in one object, no import cycle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import gaussmix
from gaussmix._engine.stats import stats_from_resp
from gaussmix._models.prior import default_prior
from gaussmix._models.registry import (CovarianceModel, MstepResult, get_model,
                                       model_names, register, unregister)

import import_cycles

MCLUST = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE",
          "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")

# mclust's nVarParams, written out.
N_VAR_PARAMS = {
    "E": lambda G, d: 1, "V": lambda G, d: G,
    "EII": lambda G, d: 1, "VII": lambda G, d: G,
    "EEI": lambda G, d: d, "VEI": lambda G, d: G + (d - 1),
    "EVI": lambda G, d: 1 + G * (d - 1), "VVI": lambda G, d: G * d,
    "EEE": lambda G, d: d * (d + 1) / 2,
    "EVE": lambda G, d: 1 + G * (d - 1) + d * (d - 1) / 2,
    "VEE": lambda G, d: G + (d - 1) + d * (d - 1) / 2,
    "VVE": lambda G, d: G + G * (d - 1) + d * (d - 1) / 2,
    "EEV": lambda G, d: 1 + (d - 1) + G * d * (d - 1) / 2,
    "VEV": lambda G, d: G + (d - 1) + G * d * (d - 1) / 2,
    "EVV": lambda G, d: 1 - G + G * d * (d + 1) / 2,
    "VVV": lambda G, d: G * d * (d + 1) / 2,
}
# summary(Mclust(...))'s wording, as select reported it before the registry.
MCLUST_TYPES = {
    "E": "univariate, equal variance",
    "V": "univariate, unequal variance",
    "EII": "spherical, equal volume",
    "VII": "spherical, varying volume",
    "EEI": "diagonal, equal volume and shape",
    "VEI": "diagonal, equal shape",
    "EVI": "diagonal, equal volume, varying shape",
    "VVI": "diagonal, varying volume and shape",
    "EEE": "ellipsoidal, equal volume, shape and orientation",
    "EVE": "ellipsoidal, equal volume and orientation",
    "VEE": "ellipsoidal, equal shape and orientation",
    "VVE": "ellipsoidal, equal orientation",
    "EEV": "ellipsoidal, equal volume and shape",
    "VEV": "ellipsoidal, equal shape",
    "EVV": "ellipsoidal, equal volume",
    "VVV": "ellipsoidal, varying volume, shape, and orientation",
}
PRIOR = {"E", "V", "EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV"}
SINGLE = {"E": "X", "V": "X", "EII": "XII", "VII": "XII", "EEI": "XXI", "VEI": "XXI",
          "EVI": "XXI", "VVI": "XXI"}
FAST_CODES = {"EII": 0, "VII": 1, "EEI": 2, "VEI": 3, "EVI": 4, "VVI": 5, "EEE": 6,
              "VEE": 7, "EVE": 8, "VVE": 9, "EEV": 10, "VEV": 11, "EVV": 12, "VVV": 13,
              "E": 0, "V": 1}


def _layout_shape(family, K, d):
    return {"spherical": (K,), "diag": (K, d), "tied": (d, d), "full": (K, d, d)}[family]


def _random_stats(K, d, kind="full", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d)
    resp = rng.dirichlet(np.ones(K), size=60)
    return X, stats_from_resp(X, resp, kind)


def test_every_mclust_model_is_registered_with_its_mclust_facts():
    assert set(MCLUST) | {"E", "V"} <= set(model_names())
    for name in MCLUST + ("E", "V"):
        model = get_model(name)
        assert model.name == name
        assert model.mclust_type == MCLUST_TYPES[name]
        assert model.has_prior == (name in PRIOR)
        assert model.single_class == SINGLE.get(name, "XXX")
        assert model.fast_code == FAST_CODES[name]
        assert model.univariate == (name in ("E", "V"))
        assert model.is_diagonal == (name in MCLUST[:6] + ("E", "V"))
        assert model.description
        # scikit-learn's closed form exactly for its four
        assert (model.sklearn_covariances is not None) == (name in ("VVV", "EEE", "VVI",
                                                                     "VII"))


@pytest.mark.parametrize("name", MCLUST + ("E", "V"))
def test_parameter_counts_are_mclusts_nvarparams(name):
    model = get_model(name)
    for K, d in ((1, 1), (1, 3), (2, 2), (4, 2), (3, 5), (7, 10)):
        if model.univariate and d != 1:
            continue
        assert model.n_cov_parameters(K, d) == round(N_VAR_PARAMS[name](K, d))


@pytest.mark.parametrize("name", model_names())
def test_family_matches_what_the_msteps_return(name):
    model = get_model(name)
    d = 1 if model.univariate else 3
    for K in (1, 3):
        X, stats = _random_stats(K, d, seed=K)  # full: scatter_from converts it
        shape = _layout_shape(model.family, K, d)
        scatter = model.scatter_from(stats)
        assert scatter.shape == {"full": (K, d, d), "tied": (d, d),
                                 "diag": (K, d)}[model.stats_kind]
        if model.mstep is not None:
            assert model.mstep(stats.nk, stats.means, scatter, None).covariances.shape == shape
        if model.map_mstep is not None:
            prior = default_prior(X, K, name)
            means, result = model.map_mstep(stats.nk, stats.means, scatter, prior, None)
            assert means.shape == (K, d) and result.covariances.shape == shape
        _, own = _random_stats(K, d, model.stats_kind, seed=K)  # as the engine passes it
        assert model.estimate(own, own.nk, 1e-6, None).shape == shape
        if K == 1:
            mean = X.mean(axis=0)
            centred = X - mean
            _, covs = model.single(X.shape[0], mean, centred.T @ centred)
            assert covs.shape == _layout_shape(model.family, 1, d)


def test_a_model_must_be_well_formed():
    with pytest.raises(ValueError, match="family"):
        CovarianceModel("bad", "round", "diag", lambda K, d: 1, mstep=lambda *a: None)
    with pytest.raises(ValueError, match="mstep"):
        CovarianceModel("bad", "diag", "diag", lambda K, d: 1)
    with pytest.raises(ValueError, match="alias"):
        register(CovarianceModel("full", "diag", "diag", lambda K, d: 1,
                                 mstep=lambda *a: None))


# ---------------------------------------------------------------------------------------
# A model defined outside the package: one register call

def _unit_spheres(nk, means, scatter, state=None):
    """EII with the variance fixed at 1."""
    return MstepResult(np.ones(nk.shape[0]))


@pytest.fixture
def toy_model():
    model = register(CovarianceModel(
        "UNIT", "spherical", "diag", lambda K, d: 0, description="unit spheres",
        mstep=_unit_spheres))
    yield model
    unregister(model.name)


def test_a_registered_model_fits_with_the_estimator(toy_model):
    assert "UNIT" in model_names() and "UNIT" in gaussmix.model_names()
    X, _ = make_blobs(n_samples=400, centers=[[-4, 0], [4, 1]], cluster_std=1.0,
                      random_state=0)
    gm = gaussmix.GaussianMixture(2, covariance_type="UNIT", random_state=0).fit(X)
    np.testing.assert_array_equal(gm.covariances_, np.ones(2))
    sk = SkGaussianMixture(2, covariance_type="spherical", random_state=0).fit(X)
    order, sk_order = np.argsort(gm.means_[:, 0]), np.argsort(sk.means_[:, 0])
    np.testing.assert_allclose(gm.means_[order], sk.means_[sk_order], atol=0.05)
    assert gm.predict(X).shape == (400,)


def test_unregister_forgets_the_model(toy_model):
    unregister("UNIT")
    assert "UNIT" not in model_names()
    with pytest.raises(ValueError, match="Unknown covariance model"):
        get_model("UNIT")
    register(toy_model)  # for the fixture to remove


# ---------------------------------------------------------------------------------------
# No import cycle

SRC = Path(__file__).resolve().parents[1] / "src" / "gaussmix"


def test_no_import_cycle_among_modules():
    # lazy (function-level) imports count: they close a circle too, only later
    assert import_cycles.module_cycles(SRC) == []


def test_no_import_cycle_among_packages():
    # The engine reads the models' registry; the models never import the engine.
    assert import_cycles.package_cycles(SRC) == []
