"""Every parameter of every public face, given values of every type, sign, NaN and inf:
a result or a ValueError/TypeError that names the parameter, never a hang (issue 17)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from _deadline import within_deadline
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gaussmix
from gaussmix import Gauss, Mixture, hc, mclust_em, select

RNG = np.random.default_rng(17)
X = np.vstack([RNG.normal(0.0, 1.0, (30, 2)), RNG.normal(5.0, 1.0, (30, 2))])
LABELS = np.repeat([0, 1], 30)

# Values of every kind a caller might pass by mistake.
ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-1, 0, 1, 10**30, -(10**30), 2.0, math.nan, math.inf, -math.inf,
                     1e-300, "auto", "", "x", "1e-5", [1, 2], (), {}, object(),
                     np.float64(np.nan), np.int64(-1)]),
    st.text(max_size=3),
    st.lists(st.integers(-3, 5), max_size=3),
)

FAST = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


def _outcome(name, call, *args, aliases=(), **kwargs):
    """Run under the deadline; an error must be a ValueError/TypeError naming ``name``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return within_deadline(call, *args, **kwargs)
        except gaussmix.FitError as exc:  # typed: the data cannot be fitted (NaN grid)
            return exc
        except (ValueError, TypeError) as exc:
            message = str(exc).lower()
            names = (name.lower(),) + tuple(a.lower() for a in aliases)
            assert any(n in message for n in names), (name, repr(exc))
            return exc


@pytest.fixture(scope="module", autouse=True)
def _compiled_once():
    # The compiled backend's first call compiles (or loads its cache): not a hang.
    within_deadline(select, X, G=[2], models=["EII"], deadline=600)
    within_deadline(hc, X, deadline=600)


# ------------------------------------------------------------------------- select
SELECT_PARAMS = ["G", "models", "prior", "noise", "hypvol", "subset", "tol", "max_iter",
                 "random_state", "n_jobs", "verbose", "backend"]


@FAST
@given(name=st.sampled_from(SELECT_PARAMS), value=ANY)
def test_select_every_parameter(name, value):
    kwargs = {"G": [2], "models": ["EII"], "n_jobs": 1}
    kwargs[name] = value
    if name == "hypvol":
        kwargs["noise"] = np.arange(3)
    aliases = {"G": ("every g",), "models": ("model",), "subset": ("row",),
               "noise": ("observations",), "hypvol": ("hypervolume",)}.get(name, ())
    result = _outcome(name, select, X, aliases=aliases, **kwargs)
    if isinstance(result, gaussmix.SelectionResult):
        assert np.isfinite(result.bic_value)


def test_select_negative_and_nan_tol_raise_instead_of_hanging():
    for tol in (-1, -1e-9, math.nan, math.inf):
        for backend in ("auto", "numpy"):
            with pytest.raises(ValueError, match="tol"):
                within_deadline(select, X, G=[2], models=["EII"], tol=tol,
                                backend=backend)


def test_select_tol_zero_stops_at_the_cap():
    result = within_deadline(select, X, G=[2], models=["EII", "VVV"], tol=0.0,
                             max_iter=500, backend="numpy")
    assert (result.n_iter.to_numpy() <= 500).all()


def test_the_default_cap_is_finite_and_documented():
    from gaussmix._models.numerics import MCLUST_MAX_ITER

    assert 0 < MCLUST_MAX_ITER < 10**7
    assert "10 000" in select.__doc__ and "10 000" in mclust_em.__doc__


# ---------------------------------------------------------------------- mclust_em
MCLUST_EM_PARAMS = ["model_name", "tol", "max_iter", "prior", "noise_vinv", "backend"]


@FAST
@given(name=st.sampled_from(MCLUST_EM_PARAMS), value=ANY)
def test_mclust_em_every_parameter(name, value):
    kwargs = {"model_name": "VVV", "z_init": LABELS}
    kwargs[name] = value
    if name == "noise_vinv" and value is not None:
        kwargs["z_init"] = np.column_stack([np.eye(2)[LABELS], np.zeros(60)])
    aliases = {"model_name": ("model",), "prior": ("conjugate",)}.get(name, ())
    _outcome(name, mclust_em, X, aliases=aliases, **kwargs)


@FAST
@given(value=ANY)
def test_mclust_em_z_init(value):
    _outcome("z_init", mclust_em, X, "VVV", value, aliases=("z ",))


# ----------------------------------------------------------------------------- hc
@FAST
@given(name=st.sampled_from(["model_name", "alpha", "beta", "n_merges", "backend"]),
       value=ANY)
def test_hc_every_parameter(name, value):
    kwargs = {name: value}
    _outcome(name, hc, X, **kwargs)


# ------------------------------------------------------------ Gauss and Mixture
@FAST
@given(name=st.sampled_from(["mu", "cov", "pi"]), value=ANY)
def test_gauss_constructor(name, value):
    kwargs = {"mu": [0.0], "cov": 1.0, "pi": 1.0}
    kwargs[name] = value
    g = _outcome(name, Gauss, aliases=("dimension",), **kwargs)
    if isinstance(g, Gauss):
        # A log-density is finite or -inf (a far mean), never NaN.
        assert not np.isnan(g.log_p(np.zeros((1, g.n_features)))).any()


@FAST
@given(value=ANY)
def test_mixture_constructor(value):
    _outcome("reg_covar", Mixture, [Gauss([0.0, 0.0]), Gauss([5.0, 5.0])],
             reg_covar=value)
    _outcome("gauss", Mixture, value, aliases=("component", "iterable", "object"))


@FAST
@given(name=st.sampled_from(["n_steps", "tol", "callback"]), value=ANY)
def test_mixture_fit(name, value):
    mixture = Mixture([Gauss([0.0, 0.0]), Gauss([5.0, 5.0])])
    kwargs = {"n_steps": 5}
    kwargs[name] = value
    _outcome(name, mixture.fit, X, **kwargs)


@FAST
@given(name=st.sampled_from(["n", "random_state"]), value=ANY)
def test_mixture_sample(name, value):
    mixture = Mixture([Gauss([0.0, 0.0]), Gauss([5.0, 5.0])])
    kwargs = {name: value}
    out = _outcome(name, mixture.sample, **kwargs)
    if isinstance(out, tuple):
        assert np.all(np.isfinite(out[0]))


def test_sample_of_a_huge_count_is_a_clear_error():
    with pytest.raises(ValueError, match="n must be"):
        Mixture([Gauss([0.0, 0.0])]).sample(10**30)


def test_mixture_fit_refuses_an_endless_step_count():
    mixture = Mixture([Gauss([0.0, 0.0]), Gauss([5.0, 5.0])])
    with pytest.raises(ValueError, match="n_steps"):
        mixture.fit(X, n_steps=10**30)
    with pytest.raises(TypeError, match="n_steps"):
        mixture.fit(X, n_steps=1e300)


def test_mclust_em_tol_zero_stops_at_the_default_cap():
    fit = within_deadline(mclust_em, X, "EII", LABELS, tol=0.0)
    from gaussmix._models.numerics import MCLUST_MAX_ITER

    assert fit.n_iter <= MCLUST_MAX_ITER


def test_select_with_a_subset_smaller_than_G_leaves_nan_cells():
    result = within_deadline(select, X, G=[1, 2, 3], models=["EII"], subset=[0, 40])
    assert result.bic.loc[1, "EII"] == result.bic_value
    assert np.isnan(result.bic.loc[3, "EII"])
