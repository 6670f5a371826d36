"""Model files: exact round trips, readable by plain NumPy, and refusal of bad files."""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import gaussmix
from gaussmix import GaussianMixture, ModelFileError, load, save
from gaussmix._files.model_files import FORMAT_VERSION, atomic_write, read_header


def _blobs(n=300, d=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 5, (3, d))
    return np.vstack([rng.normal(c, 1 + i, (n // 3, d)) for i, c in enumerate(centers)])


@pytest.fixture(scope="module")
def X():
    return _blobs()


@pytest.fixture(scope="module")
def fitted(X):
    return GaussianMixture(3, random_state=0).fit(X)


@pytest.fixture
def model_file(tmp_path, fitted):
    path = tmp_path / "model.gmm"
    save(fitted, path)
    return path


def _assert_same_model(a, b, X):
    # Exact equality: the file stores the arrays bit for bit.
    for name in ("weights_", "means_", "covariances_", "precisions_",
                 "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert getattr(a, name).dtype == getattr(b, name).dtype
    assert a.get_params() == b.get_params()
    assert (a.converged_, a.n_iter_, a.lower_bound_) == (b.converged_, b.n_iter_,
                                                          b.lower_bound_)
    assert list(a.lower_bounds_) == list(b.lower_bounds_)
    assert a.n_features_in_ == b.n_features_in_
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    assert a.score(X) == b.score(X)
    assert a.bic(X) == b.bic(X)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_is_exact(tmp_path, X, covariance_type, dtype):
    data = X.astype(dtype)
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=1).fit(data)
    path = tmp_path / "m.gmm"
    save(gm, path)
    loaded = load(path)
    assert type(loaded) is GaussianMixture
    _assert_same_model(gm, loaded, data)
    assert loaded.means_.dtype == dtype
    # Sampling uses the stored random_state: the same draws.
    for a, b in zip(gm.sample(25), loaded.sample(25)):
        np.testing.assert_array_equal(a, b)


def test_round_trip_keeps_feature_names(tmp_path, X):
    frame = pd.DataFrame(X, columns=["alpha", "beta", "gamma"])
    gm = GaussianMixture(2, random_state=0).fit(frame)
    save(gm, tmp_path / "m.gmm")
    loaded = load(tmp_path / "m.gmm")
    assert list(loaded.feature_names_in_) == ["alpha", "beta", "gamma"]
    _assert_same_model(gm, loaded, frame)
    with pytest.raises(ValueError, match="feature names"):
        loaded.predict(frame.rename(columns={"alpha": "other"}))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_loaded_model_continues_a_warm_start_identically(tmp_path, X):
    gm = GaussianMixture(3, random_state=0, max_iter=3, tol=0).fit(X)
    save(gm, tmp_path / "m.gmm")
    loaded = load(tmp_path / "m.gmm")
    for model in (gm, loaded):
        model.set_params(warm_start=True, max_iter=4)
        model.fit(X)
    _assert_same_model(gm, loaded, X)


def test_file_agrees_with_scikit_learn(model_file, fitted, X):
    # An independent implementation given the stored arrays predicts the same.
    loaded = load(model_file)
    sk = SkGaussianMixture(3)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        setattr(sk, name, getattr(loaded, name))
    np.testing.assert_array_equal(sk.predict(X), loaded.predict(X))
    np.testing.assert_allclose(sk.score_samples(X), loaded.score_samples(X), rtol=1e-12)


def test_file_is_readable_by_plain_numpy_and_json(model_file, fitted):
    with np.load(model_file, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["weights"], fitted.weights_)
        np.testing.assert_array_equal(npz["precisions_cholesky"],
                                      fitted.precisions_cholesky_)
    with zipfile.ZipFile(model_file) as zf:
        header = json.loads(zf.read("header.json"))
    assert header["format"] == "gaussmix-model"
    assert header["format_version"] == FORMAT_VERSION
    assert header["gaussmix_version"] == gaussmix.__version__
    assert header["kind"] == "GaussianMixture"
    assert header["covariance_type"] == "full"
    assert (header["n_components"], header["n_features"]) == (3, 3)
    assert header["dtype"] == "float64"
    assert header["fitted"]["n_iter"] == fitted.n_iter_
    assert header["params"]["random_state"] == 0
    assert header == read_header(model_file)


def test_non_json_parameters_are_dropped_and_listed(tmp_path, X):
    gm = GaussianMixture(2, random_state=np.random.RandomState(0),
                         means_init=X[:2]).fit(X)
    save(gm, tmp_path / "m.gmm")
    header = read_header(tmp_path / "m.gmm")
    assert header["dropped_params"] == ["means_init", "random_state"]
    loaded = load(tmp_path / "m.gmm")
    assert loaded.random_state is None and loaded.means_init is None
    np.testing.assert_array_equal(loaded.predict(X), gm.predict(X))


def test_estimator_from_an_unfitted_mixture_round_trips(tmp_path, X):
    _mixture = pytest.importorskip("gaussmix._mixture")
    gm = _mixture.Mixture(
        [_mixture.Gauss(np.zeros(3), np.eye(3), 0.5),
         _mixture.Gauss(np.ones(3), 2 * np.eye(3), 0.5)]
    ).to_estimator()
    save(gm, tmp_path / "m.gmm")
    assert read_header(tmp_path / "m.gmm")["fitted"]["lower_bound"] is None
    loaded = load(tmp_path / "m.gmm")
    assert loaded.lower_bound_ == -np.inf and loaded.lower_bounds_ == []
    np.testing.assert_array_equal(loaded.score_samples(X), gm.score_samples(X))


def test_save_refuses_unfitted_and_foreign_objects(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        save(GaussianMixture(2), tmp_path / "m.gmm")
    with pytest.raises(TypeError, match="Cannot save a dict"):
        save({"weights": [1.0]}, tmp_path / "m.gmm")
    assert not os.listdir(tmp_path)


def test_mixture_round_trip(tmp_path, X):
    _mixture = pytest.importorskip("gaussmix._mixture")
    rng = np.random.default_rng(0)
    mixture = _mixture.Mixture(
        _mixture.Gauss(rng.standard_normal(3) * 4, np.eye(3), 1.0) for _ in range(3)
    )
    mixture.fit(X, n_steps=5)
    save(mixture, tmp_path / "mix.gmm")
    assert read_header(tmp_path / "mix.gmm")["kind"] == "Mixture"
    loaded = load(tmp_path / "mix.gmm")
    assert type(loaded) is _mixture.Mixture and len(loaded) == 3
    for a, b in zip(mixture, loaded):
        np.testing.assert_array_equal(a.mu, b.mu)
        np.testing.assert_array_equal(a.cov, b.cov)
        assert a.pi == pytest.approx(b.pi, rel=1e-15)
    np.testing.assert_array_equal(mixture.predict(X), loaded.predict(X))
    np.testing.assert_allclose(mixture.log_p(X), loaded.log_p(X), rtol=1e-13)


def test_selection_result_saves_best_model_and_metadata(tmp_path, X, fitted):
    bic = pd.DataFrame({"VVV": [-10.5, np.nan], "EII": [-12.0, -11.0]},
                       index=pd.Index([1, 2], name="G"))
    result = SimpleNamespace(best=fitted, bic=bic, icl=bic - 1, best_model="VVV",
                             best_G=3)
    save(result, tmp_path / "sel.gmm")
    loaded = load(tmp_path / "sel.gmm")
    _assert_same_model(fitted, loaded, X)
    selection = read_header(tmp_path / "sel.gmm")["selection"]
    assert selection["best_model"] == "VVV" and selection["best_G"] == 3
    assert selection["bic"] == {"index": [1, 2], "columns": ["VVV", "EII"],
                                "data": [[-10.5, -12.0], [None, -11.0]]}
    assert selection["icl"]["data"][1] == [None, -12.0]


def test_real_selection_result_round_trip(tmp_path, X):
    _select = pytest.importorskip("gaussmix._mclust.select")
    result = _select.select(X[:150], G=[2, 3], models=["VVV", "EII"])
    save(result, tmp_path / "sel.gmm")
    loaded = load(tmp_path / "sel.gmm")
    np.testing.assert_array_equal(loaded.predict(X), result.best.predict(X))
    np.testing.assert_array_equal(loaded.score_samples(X), result.best.score_samples(X))
    selection = read_header(tmp_path / "sel.gmm")["selection"]
    assert (selection["best_model"], selection["best_G"]) == (result.best_model,
                                                             result.best_G)
    table = np.array(selection["bic"]["data"], dtype=float)  # null -> NaN
    np.testing.assert_array_equal(table, result.bic.to_numpy(dtype=float))


def test_mclust_covariance_type_round_trip(tmp_path, X):
    if "VEV" not in gaussmix.model_names():
        pytest.skip("mclust models not registered yet")
    gm = GaussianMixture(2, covariance_type="VEV", random_state=0).fit(X)
    save(gm, tmp_path / "m.gmm")
    _assert_same_model(gm, load(tmp_path / "m.gmm"), X)


# ------------------------------------------------------------------ atomic writes
def test_interrupted_save_leaves_the_old_file(tmp_path, monkeypatch, fitted, X):
    path = tmp_path / "m.gmm"
    save(fitted, path)
    before = path.read_bytes()
    calls = []

    def failing_save(file, arr, allow_pickle=True):
        calls.append(1)
        if len(calls) == 3:  # half-way through the members
            raise KeyboardInterrupt
        return np.lib.format.write_array(file, arr, allow_pickle=allow_pickle)

    monkeypatch.setattr("gaussmix._files.model_files.np.save", failing_save)
    other = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(KeyboardInterrupt):
        save(other, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.gmm"]  # no temporary left behind


def test_atomic_write_replaces_and_keeps_permissions(tmp_path):
    path = tmp_path / "out.bin"
    atomic_write(path, lambda f: f.write(b"one"))
    os.chmod(path, 0o640)
    atomic_write(path, lambda f: f.write(b"two"))
    assert path.read_bytes() == b"two"
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["out.bin"]


# ------------------------------------------------------------------ refusing bad files
def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _write_members(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def _tampered(path, edit):
    members = _members(path)
    edit(members)
    _write_members(path, members)
    return path


def _edit_header(change):
    def edit(members):
        header = json.loads(members["header.json"])
        change(header)
        members["header.json"] = json.dumps(header).encode()
    return edit


def _set_array(name, array):
    def edit(members):
        members[name + ".npy"] = _npy(array)
    return edit


def _replace_lower_bound(header):
    header["fitted"]["lower_bound"] = float("nan")  # json writes NaN, which is not JSON


TAMPERING = {
    "unknown member": (lambda m: m.update({"evil.npy": _npy(np.zeros(2))}),
                       "unexpected member"),
    "extra non-npy member": (lambda m: m.update({"payload.pkl": b"x"}),
                             "unexpected member"),
    "missing member": (lambda m: m.pop("means.npy"), "missing member"),
    "missing header": (lambda m: m.pop("header.json"), "no header.json"),
    "header not json": (lambda m: m.update({"header.json": b"{not json"}),
                        "not valid JSON"),
    "newer version": (_edit_header(lambda h: h.update(format_version=FORMAT_VERSION + 1)),
                      "newer"),
    "older version": (_edit_header(lambda h: h.update(format_version=0)),
                      "unknown format version"),
    "wrong format": (_edit_header(lambda h: h.update(format="other")), "not a gaussmix"),
    "unknown kind": (_edit_header(lambda h: h.update(kind="Pickle")), "unknown model kind"),
    "unknown covariance": (_edit_header(lambda h: h.update(covariance_type="XYZ")),
                           "unknown covariance type"),
    "header lacks field": (_edit_header(lambda h: h.pop("n_features")), "n_features"),
    "wrong type": (_edit_header(lambda h: h.update(n_components="3")), "wrong type"),
    "bool as int": (_edit_header(lambda h: h.update(n_components=True)), "wrong type"),
    "n_components disagrees": (_edit_header(lambda h: h.update(n_components=4)),
                               "array list does not match"),
    "wrong shape": (_set_array("means", np.zeros((3, 2))), "shape"),
    "wrong dtype": (_set_array("weights", np.full(3, 1 / 3, dtype=np.float32)), "dtype"),
    "integer dtype": (_set_array("weights", np.ones(3, dtype=np.int64)), "dtype"),
    "big-endian": (_set_array("weights", np.full(3, 1 / 3, dtype=">f8")), "dtype"),
    "NaN value": (_set_array("means", np.full((3, 3), np.nan)), "NaN or infinity"),
    "inf value": (_set_array("weights", np.array([np.inf, 0, 0])), "NaN or infinity"),
    "weights not summing to one": (_set_array("weights", np.array([0.5, 0.5, 0.5])),
                                   "probability vector"),
    "negative precision factor": (
        _set_array("precisions_cholesky", -np.tile(np.eye(3), (3, 1, 1))),
        "positive diagonal"),
    "precisions inconsistent": (_set_array("precisions", np.tile(np.eye(3), (3, 1, 1))),
                                "do not match"),
    "NaN lower bound": (_edit_header(_replace_lower_bound), "not valid JSON"),
    "unknown parameter": (_edit_header(lambda h: h["params"].update(evil=1)),
                          "unknown estimator parameter"),
    "invalid parameter": (_edit_header(lambda h: h["params"].update(tol=-1.0)),
                          "invalid estimator parameters"),
    "member is an npz": (lambda m: m.update({"weights.npy": m["header.json"]}),
                         "weights"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampered_files_are_refused(model_file, case):
    edit, fragment = TAMPERING[case]
    _tampered(model_file, edit)
    with pytest.raises(ModelFileError, match=fragment) as info:
        load(model_file)
    assert isinstance(info.value, ValueError)
    assert str(model_file) in str(info.value)


def test_object_arrays_are_never_unpickled(model_file, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    payload = np.array([Payload(), Payload(), Payload()], dtype=object)
    _tampered(model_file, lambda m: m.update({"weights.npy": _npy(payload, True)}))
    with pytest.raises(ModelFileError, match="weights"):
        load(model_file)
    assert not marker.exists()
    # A bare pickle renamed as a model file is not a zip: refused before anything runs.
    bogus = tmp_path / "pickle.gmm"
    bogus.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ModelFileError, match="corrupted or truncated"):
        load(bogus)
    assert not marker.exists()


def test_oversized_member_is_refused_before_reading(model_file):
    huge = _npy(np.zeros(100_000))
    _tampered(model_file, lambda m: m.update({"weights.npy": huge}))
    with pytest.raises(ModelFileError, match="larger than its header"):
        load(model_file)


@pytest.mark.parametrize("cut", [0.0, 0.3, 0.6, 0.95])
def test_truncated_file_is_refused(model_file, cut):
    data = model_file.read_bytes()
    model_file.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ModelFileError, match=str(model_file)):
        load(model_file)


def test_every_single_byte_corruption_is_refused_or_harmless(model_file, X):
    # Flip bytes all over the archive: each flip is refused with ModelFileError or (in
    # bytes zip readers ignore, e.g. timestamps) yields the same model. Never any other
    # exception, never a silently different model.
    good = load(model_file)
    data = bytearray(model_file.read_bytes())
    refused = 0
    for position in range(0, len(data), 7):
        corrupted = bytearray(data)
        corrupted[position] ^= 0x5A
        model_file.write_bytes(bytes(corrupted))
        try:
            model = load(model_file)
        except ModelFileError:
            refused += 1
            continue
        np.testing.assert_array_equal(model.predict_proba(X), good.predict_proba(X))
    assert refused > len(data) // 7 // 2


def test_not_a_model_file(tmp_path):
    text = tmp_path / "data.csv"
    text.write_text("a,b\n1,2\n")
    with pytest.raises(ModelFileError, match="corrupted or truncated"):
        load(text)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.gmm")
    other_zip = tmp_path / "other.npz"
    np.savez(other_zip, a=np.zeros(2))
    with pytest.raises(ModelFileError, match="no header.json"):
        load(other_zip)
