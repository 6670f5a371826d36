"""Adversarial model files: refused with ModelFileError, or loaded exactly as saved.

Issue 17, section 6. Valid files of every covariance family (float64 and float32, with
and without feature names, and a ``Mixture``) are corrupted at random: header numbers
replaced by values that overflow, dimensions and shapes inflated, arrays scaled,
perturbed, made asymmetric or indefinite, ``.npy`` headers claiming other shapes or
dtypes, zip directory sizes changed, feature names repeated, bytes flipped, the file
truncated. Whatever the corruption, ``load``, ``load_estimator`` and ``read_header``
either raise ``ModelFileError`` naming the file, or return exactly the saved model (bit
for bit): never another exception, never a different model, and the file is left as is.

Corruptions that describe another *valid* model (a mean moved, all of covariances,
precisions and factors replaced consistently) cannot be told from a genuine file and are
not generated: only changes that make a file inconsistent with itself are.
"""

from __future__ import annotations

import io
import json
import re
import struct
import tracemalloc
import zipfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import gaussmix
from gaussmix import GaussianMixture, Mixture, ModelFileError, load, read_header, save
from gaussmix._files.model_files import load_estimator

# ----------------------------------------------------------------------- valid files
BASES = [
    ("full", np.float64, False), ("full", np.float32, True), ("tied", np.float64, True),
    ("tied", np.float32, False), ("diag", np.float64, False), ("diag", np.float32, True),
    ("spherical", np.float64, True), ("spherical", np.float32, False),
    ("VEV", np.float64, False), ("mixture", np.float64, False),
]


def _data(seed, d, dtype):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 4, (2, d))
    mixing = rng.normal(0, 1, (d, d)) + 2 * np.eye(d)  # correlated features
    x = np.vstack([rng.normal(c, 1, (40, d)) @ mixing for c in centers])
    return x.astype(dtype)


def _saved(index, directory):
    """(path, members, expected model) of base model ``index``."""
    cov_type, dtype, named = BASES[index]
    d = 2 + index % 3
    x = _data(index, d, dtype)
    if named:
        x = pd.DataFrame(x, columns=[f"f{i}" for i in range(d)])
    if cov_type == "mixture":
        model = Mixture.from_estimator(GaussianMixture(2, random_state=index).fit(x))
    else:
        model = GaussianMixture(2, covariance_type=cov_type, random_state=index).fit(x)
    path = directory / f"base{index}.gmm"
    save(model, path)
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    return path, members, (load(path), load_estimator(path))


class _Bases(list):
    def __repr__(self):  # hypothesis prints its arguments on failure
        return f"<{len(self)} saved models>"


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bases")
    return _Bases(_saved(i, directory) for i in range(len(BASES)))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("corrupted")


def _zip(members, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _array(members, name):
    return np.load(io.BytesIO(members[name + ".npy"]), allow_pickle=False)


# ------------------------------------------------------------------------ the oracle
def _parameters(model):
    if isinstance(model, Mixture):
        return [(np.asarray(g.mu), np.asarray(g.cov), np.asarray(g.pi)) for g in model]
    names = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")
    return [getattr(model, n) for n in names]


def _assert_identical(model, expected):
    assert type(model) is type(expected)
    flat = lambda m: [a for item in _parameters(m) for a in
                      (item if isinstance(item, tuple) else (item,))]
    for a, b in zip(flat(model), flat(expected), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()  # bit for bit
    if isinstance(model, GaussianMixture):
        assert model.get_params() == expected.get_params()
        for name in ("converged_", "n_iter_", "lower_bound_", "lower_bounds_",
                     "n_features_in_"):
            assert getattr(model, name) == getattr(expected, name)
        assert list(getattr(model, "feature_names_in_", [])) == list(
            getattr(expected, "feature_names_in_", []))


def _check(path, data: bytes, expected):
    """Write ``data`` to ``path`` and load it every way: refused or identical."""
    path.write_bytes(data)
    outcomes = []
    for reader in (load, load_estimator, read_header):
        try:
            result = reader(path)
        except ModelFileError as exc:
            assert str(path) in str(exc)
            outcomes.append("refused")
            continue
        outcomes.append("loaded")
        if reader is load:
            _assert_identical(result, expected[0])
        elif reader is load_estimator:
            _assert_identical(result, expected[1])
    assert path.read_bytes() == data  # loading never writes
    # read_header checks the same arrays; only estimator parameters it leaves to load.
    assert outcomes[0] == outcomes[1]
    assert outcomes[2] == "loaded" or outcomes[0] == "refused"
    return outcomes[0]


# ---------------------------------------------------------------------- corruptions
# JSON number tokens that no finite float64 or bounded count can hold.
OVERFLOWING = st.sampled_from([
    "1e400", "-1e400", "1E+999", "NaN", "Infinity", "-Infinity",
    "1" + "0" * 399, "-" + "9" * 400, str(2**64), str(-(2**63) - 1), str(10**20),
])
HEADER_NUMBERS = [
    ("n_components",), ("n_features",), ("format_version",), ("fitted", "n_iter"),
    ("fitted", "lower_bound"), ("fitted", "previous_log_likelihood"),
    ("params", "tol"), ("params", "reg_covar"), ("params", "max_iter"),
    ("params", "random_state"), ("arrays", "weights", "shape", 0),
    ("arrays", "means", "shape", 1),
]
_MARK = "__corrupted_number__"


def _set_path(obj, path, value):
    for key in path[:-1]:
        obj = obj[key]
    if isinstance(obj, dict) or (isinstance(obj, list) and path[-1] < len(obj)):
        obj[path[-1]] = value
        return True
    return False


@st.composite
def overflowing_number(draw, members):
    header = json.loads(members["header.json"])
    path = draw(st.sampled_from(HEADER_NUMBERS))
    try:
        placed = _set_path(header, path, _MARK)
    except (KeyError, TypeError):
        placed = False
    if not placed:  # e.g. a Mixture has no 'fitted': put the number at the top
        header["extra_number"] = _MARK
    token = draw(OVERFLOWING)
    text = json.dumps(header).replace(json.dumps(_MARK), token)
    return {**members, "header.json": text.encode()}


@st.composite
def inflated_dimensions(draw, members):
    header = json.loads(members["header.json"])
    key = draw(st.sampled_from(["n_components", "n_features"]))
    value = draw(st.sampled_from([2500, 10**6, 2**31, 2**40, 2**53])
                 | st.integers(header[key] + 1, 5000))
    header[key] = value
    k, d = header["n_components"], header["n_features"]
    if draw(st.booleans()):  # keep the header consistent with itself
        for name, spec in header["arrays"].items():
            shape = spec["shape"]
            if name == "lower_bounds":
                continue
            if name == "weights" or (len(shape) == 1 and name != "weights"
                                     and header["covariance_type"] in ("spherical",)):
                spec["shape"] = [k]
            elif len(shape) == 3:
                spec["shape"] = [k, d, d]
            elif name == "means" or header["covariance_type"] in ("diag",):
                spec["shape"] = [k, d]
            else:
                spec["shape"] = [d, d]
        if header["feature_names"] is not None and key == "n_features" and d < 10**5:
            header["feature_names"] = [f"g{i}" for i in range(d)]
    return {**members, "header.json": json.dumps(header).encode()}


# Factors well beyond the rounding bounds of float32 files (see docs/cli.md).
SCALES = st.sampled_from([100.0, 0.01, -1.0, 2.0, 0.5, 1.1, 0.9, 1e300, 1e-300])
REDUNDANT = ["covariances", "precisions", "precisions_cholesky", "weights"]


@st.composite
def scaled_array(draw, members):
    name = draw(st.sampled_from(REDUNDANT))
    a = _array(members, name)
    factor = draw(SCALES)
    with np.errstate(all="ignore"):
        if draw(st.booleans()):
            out = (a * factor).astype(a.dtype)
            note(f"{name} * {factor}")
        else:  # one entry only
            flat = a.reshape(-1).copy()
            at = draw(st.integers(0, flat.size - 1))
            flat[at] *= factor
            out = flat.reshape(a.shape)
            note(f"{name}.flat[{at}] * {factor}: {a.reshape(-1)[at]!r} -> {flat[at]!r}")
    return {**members, name + ".npy": _npy(out)}


@st.composite
def broken_matrix(draw, members):
    """Covariances made asymmetric, indefinite, or off by a relative step."""
    c = _array(members, "covariances").astype(np.float64)
    family = gaussmix.get_model(json.loads(members["header.json"])["covariance_type"]).family
    stacked = {"full": c, "tied": c[None]}.get(family)
    if stacked is None:  # diag and spherical: a sign or a step
        flat = c.reshape(-1).copy()
        i = draw(st.integers(0, flat.size - 1))
        flat[i] = draw(st.sampled_from([-flat[i], 0.0, flat[i] * 1.001, -1e-300]))
        out = flat.reshape(c.shape)
    else:
        stacked = stacked.copy()
        k = draw(st.integers(0, stacked.shape[0] - 1))
        d = stacked.shape[-1]
        i, j = draw(st.integers(0, d - 1)), draw(st.integers(0, d - 1))
        scale = np.sqrt(stacked[k, i, i] * stacked[k, j, j])
        kind = draw(st.sampled_from(["asymmetric", "symmetric step", "indefinite"]))
        step = draw(st.sampled_from([0.1, 1.0, 10.0]))
        if kind == "asymmetric":
            if i == j:
                j = (i + 1) % d
            stacked[k, i, j] += step * scale
        elif kind == "symmetric step":
            stacked[k, i, j] += step * scale
            if i != j:
                stacked[k, j, i] += step * scale
        else:  # a negative eigenvalue, positive diagonal kept
            w, v = np.linalg.eigh(stacked[k])
            w[0] = -step * abs(w[-1])
            stacked[k] = (v * w) @ v.T
        out = stacked.reshape(c.shape)
    dtype = _array(members, "covariances").dtype
    return {**members, "covariances.npy": _npy(out.astype(dtype))}


@st.composite
def lying_npy_header(draw, members):
    name = draw(st.sampled_from(sorted(n[:-4] for n in members if n.endswith(".npy"))))
    a = _array(members, name)
    shape = draw(st.sampled_from([(10**10,), (10**5, 10**5), (2**62, 4), (0,), (),
                                  (a.size,), tuple(reversed(a.shape)) + (1,),
                                  a.shape + (10**9,)]))
    descr = draw(st.sampled_from([a.dtype.str, "<f4", "<f8", ">f8", "<i8", "|O", "<c16"]))
    fortran = draw(st.booleans())
    if shape == a.shape and descr == a.dtype.str and (not fortran or a.ndim < 2):
        return members  # the same header in other words: nothing to detect
    text = repr({"descr": descr, "fortran_order": fortran, "shape": shape}) + " "
    text += " " * ((-len(text) - 11) % 64) + "\n"
    raw = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()
    return {**members, name + ".npy": raw + a.tobytes()}


@st.composite
def repeated_names(draw, members):
    header = json.loads(members["header.json"])
    d = header["n_features"]
    names = [f"f{i}" for i in range(d)]
    i = draw(st.integers(0, d - 1))
    j = (i + draw(st.integers(1, d - 1))) % d
    names[j] = names[i]
    header["feature_names"] = names
    return {**members, "header.json": json.dumps(header).encode()}


def _as_file(members) -> st.SearchStrategy:
    return st.just(_zip(members))


@st.composite
def corrupted_file(draw, bases):
    index = draw(st.integers(0, len(bases) - 1))
    _, members, expected = bases[index]
    kind = draw(st.sampled_from(["number", "dimensions", "scaled", "matrix", "npy",
                                 "names", "directory", "truncated", "flipped", "none"]))
    if kind in ("number", "dimensions", "scaled", "matrix", "npy", "names"):
        strategy = {"number": overflowing_number, "dimensions": inflated_dimensions,
                    "scaled": scaled_array, "matrix": broken_matrix,
                    "npy": lying_npy_header, "names": repeated_names}[kind]
        changed = draw(strategy(members))
        if changed == members:  # e.g. a zero entry scaled: nothing to detect
            kind = "none"
        data = _zip(changed)
    else:
        data = bytearray(_zip(members, draw(st.sampled_from(
            [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED]))))
        if kind == "directory":  # a central directory entry's sizes changed
            starts = [m.start() for m in re.finditer(b"PK\x01\x02", bytes(data))]
            at = draw(st.sampled_from(starts)) + draw(st.sampled_from([20, 24]))
            value = draw(st.sampled_from([0, 1, 2**31, 2**32 - 1])
                         | st.integers(0, 2**32 - 1))
            data[at:at + 4] = struct.pack("<I", value)
        elif kind == "truncated":
            data = data[:draw(st.integers(0, len(data) - 1))]
        elif kind == "flipped":
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= draw(st.integers(1, 255))
    return kind, bytes(data), expected


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_corrupted_files_are_refused_or_identical(bases, workdir, data):
    kind, blob, expected = data.draw(corrupted_file(bases), label="corruption")
    outcome = _check(workdir / "corrupted.gmm", blob, expected)
    event(f"{kind}: {outcome}")  # pytest --hypothesis-show-statistics
    if kind in ("number", "dimensions", "scaled", "matrix", "npy", "names",
                "truncated"):
        assert outcome == "refused", kind  # these always make a file inconsistent
    if kind == "none":
        assert outcome == "loaded"


# ------------------------------------------------------------- the reported examples
@pytest.fixture
def full_file(bases, tmp_path):
    return tmp_path / "model.gmm", bases[0][1]


def _refused(path, members, fragment):
    path.write_bytes(_zip(members))
    with pytest.raises(ModelFileError, match=fragment) as info:
        load(path)
    assert str(path) in str(info.value)
    with pytest.raises(ModelFileError, match=fragment):
        read_header(path)


@pytest.mark.parametrize("token", ["1e400", "-1e400", "1" + "0" * 399])
def test_lower_bound_that_overflows_is_refused(full_file, token):
    path, members = full_file
    header = members["header.json"].decode()
    header = re.sub(r'"lower_bound": [^,\n]+', f'"lower_bound": {token}', header)
    _refused(path, {**members, "header.json": header.encode()}, "not valid JSON.*range|"
             "not valid JSON.*overflows")


def test_npy_header_claiming_1e10_elements_is_refused_before_allocating(full_file):
    path, members = full_file
    text = "{'descr': '<f8', 'fortran_order': False, 'shape': (10000000000,), }"
    text += " " * ((-len(text) - 11) % 64) + "\n"
    weights = _array(members, "weights")
    raw = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()
    path.write_bytes(_zip({**members, "weights.npy": raw + weights.tobytes()}))
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"weights.*shape \(10000000000,\)"):
            load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20


@pytest.mark.parametrize("name, factor", [("covariances", 100.0),
                                          ("covariances", 0.01),
                                          ("precisions", 100.0)])
@pytest.mark.parametrize("index", range(len(BASES)))
def test_arrays_that_disagree_are_refused(bases, tmp_path, index, name, factor):
    _, members, _ = bases[index]
    array = _array(members, name)
    _refused(tmp_path / "m.gmm", {**members, name + ".npy": _npy(array * factor)},
             "do not match|not the inverses")


def test_asymmetric_covariances_are_refused(bases, tmp_path):
    _, members, _ = bases[0]
    c = _array(members, "covariances").copy()
    c[0, 0, 1] += 0.1 * np.sqrt(c[0, 0, 0] * c[0, 1, 1])
    _refused(tmp_path / "m.gmm", {**members, "covariances.npy": _npy(c)}, "not symmetric")


def test_indefinite_covariances_are_refused(bases, tmp_path):
    _, members, _ = bases[0]
    c = _array(members, "covariances").copy()
    w, v = np.linalg.eigh(c[1])
    w[0] = -w[0]
    c[1] = (v * w) @ v.T
    c[1] = (c[1] + c[1].T) / 2
    _refused(tmp_path / "m.gmm", {**members, "covariances.npy": _npy(c)},
             "not the inverses|not positive definite")


@pytest.mark.parametrize("index", [4, 6])  # diag, spherical
def test_non_positive_or_disagreeing_diagonal_layouts_are_refused(bases, tmp_path, index):
    _, members, _ = bases[index]
    c = _array(members, "covariances")
    _refused(tmp_path / "m.gmm", {**members, "covariances.npy": _npy(-c)}, "positive")
    _refused(tmp_path / "m.gmm", {**members, "covariances.npy": _npy(c * 100)},
             "not the inverses")


def test_duplicate_feature_names_are_refused(bases, tmp_path):
    _, members, _ = bases[1]  # saved from a DataFrame
    header = json.loads(members["header.json"])
    header["feature_names"][1] = header["feature_names"][0]
    _refused(tmp_path / "m.gmm", {**members, "header.json": json.dumps(header).encode()},
             "feature_names repeat 'f0'")


def _stream_zeros(zf, name, nbytes, header):
    with zf.open(name, "w", force_zip64=True) as member:
        member.write(header)
        chunk = bytes(1 << 22)
        while nbytes > 0:
            member.write(chunk[:nbytes])
            nbytes -= len(chunk)


def test_small_file_claiming_a_large_model_is_refused_before_allocating(bases, tmp_path):
    # A consistent header for D = 2500, K = 2, with arrays of zeros that deflate to
    # almost nothing: 100 MB per covariance array from a file of a few hundred kB.
    _, members, _ = bases[0]
    header = json.loads(members["header.json"])
    k, d = 2, 2500
    header.update(n_components=k, n_features=d)
    shapes = {"weights": (k,), "means": (k, d), "covariances": (k, d, d),
              "precisions": (k, d, d), "precisions_cholesky": (k, d, d)}
    for name, shape in shapes.items():
        header["arrays"][name]["shape"] = list(shape)
    path = tmp_path / "bomb.gmm"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED,
                         compresslevel=1) as zf:
        zf.writestr("header.json", json.dumps(header))
        zf.writestr("lower_bounds.npy", members["lower_bounds.npy"])
        for name, shape in shapes.items():
            npy = _npy(np.zeros((1,) * len(shape)))
            text = repr({"descr": "<f8", "fortran_order": False, "shape": shape}) + " "
            text += " " * ((-len(text) - 11) % 64) + "\n"
            npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()
            _stream_zeros(zf, name + ".npy", 8 * int(np.prod(shape)), npy)
    assert path.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match="implausibly many"):
            load(path)
        with pytest.raises(ModelFileError, match="implausibly many"):
            read_header(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20


def test_cli_refuses_an_adversarial_model_file(bases, tmp_path, capsys):
    from gaussmix.cli import main

    _, members, _ = bases[0]
    path = tmp_path / "m.gmm"
    c = _array(members, "covariances")
    path.write_bytes(_zip({**members, "covariances.npy": _npy(c * 100)}))
    data = tmp_path / "x.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    assert main(["predict", str(path), str(data)]) == 1
    assert "not the inverses" in capsys.readouterr().err
