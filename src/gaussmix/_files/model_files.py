"""Model files: fitted mixtures as plain arrays and JSON, loaded without running code.

A model file is a zip archive (readable as an ``.npz`` by ``numpy.load``) holding one
``header.json`` and one ``.npy`` member per array. Nothing in it is pickled: arrays are
written and read with ``allow_pickle=False``, the header is JSON, and every array is checked
against the header (shape, dtype, finiteness) before a model is built from it. The format
is documented in ``docs/cli.md``.

Writing is atomic: the archive goes to a temporary file in the target's directory, is
flushed to disk, then renamed over the target, so an interrupted save leaves either the old
file or the new one, never half of one.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from .._errors import ModelFileError  # noqa: F401  (defined there, raised here)

FORMAT_NAME = "gaussmix-model"
FORMAT_VERSION = 1
HEADER_MEMBER = "header.json"

# Array members of a file, in the order they are written. ``lower_bounds`` is only
# written for fitted estimators that have a history.
PARAMETER_ARRAYS = ("weights", "means", "covariances", "precisions", "precisions_cholesky")
KINDS = ("GaussianMixture", "BayesianGaussianMixture", "Mixture")
# A BayesianGaussianMixture's posterior and priors, after the parameter arrays.
POSTERIOR_ARRAYS = ("weight_concentration", "mean_precision", "degrees_of_freedom",
                    "mean_prior", "covariance_prior")
_FITTED_KINDS = ("GaussianMixture", "BayesianGaussianMixture")
_MAX_HEADER_BYTES = 16 << 20  # feature names of a very wide table fit comfortably
_NPY_HEADER_SLACK = 1 << 16  # a .npy header is never longer than this
_NPY_MIN_HEADER = 10  # magic string, version and header length of a .npy file
# JSON integers beyond this are refused: no count, shape, seed or setting is that large,
# and any such integer still converts exactly to a float.
_MAX_JSON_INT = 1 << 53
# What a header may claim relative to the file: the arrays it calls for may need at most
# this many bytes uncompressed beyond ``_MAX_EXPANSION`` times the file's size, so a
# small crafted file cannot make ``load`` allocate much more than it is big.
_FREE_ARRAY_BYTES = 32 << 20
_MAX_EXPANSION = 64
_DEFLATE_MAX_RATIO = 1032  # deflate never expands data more than this

# New files get the permissions an ordinary ``open(path, "w")`` would give them.
_UMASK = os.umask(0)
os.umask(_UMASK)


# --------------------------------------------------------------------------- writing
def atomic_write(path, write: Callable[[Any], None]) -> None:
    """Write a file atomically: ``write(binary_file)`` into a temporary, then rename.

    The temporary file sits in the target's directory (so the rename is atomic), is
    flushed and fsynced before ``os.replace``; on any error it is removed and the target
    is left as it was.

    Parameters
    ----------
    path : str or os.PathLike
        The file to create or replace.
    write : callable
        Called once with a binary file object open for writing.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(
            prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory
        )
    except OSError as exc:  # name the target, not the temporary
        raise type(exc)(exc.errno, f"cannot write there: {exc.strerror}", path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        try:
            mode = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_UMASK
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; not possible on every platform (Windows).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _family(covariance_type: str) -> str:
    from .._models.registry import get_model

    return get_model(covariance_type).family


def _expected_shapes(family: str, k: int, d: int) -> dict[str, tuple[int, ...]]:
    cov = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[family]
    return {
        "weights": (k,),
        "means": (k, d),
        "covariances": cov,
        "precisions": cov,
        "precisions_cholesky": cov,
    }


def _plain(value):
    """``value`` as a JSON-plain Python value, or raise TypeError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            raise TypeError("non-finite float")
        return float(value)
    raise TypeError(type(value).__name__)


def _is_estimator(obj) -> bool:
    from .._estimator import GaussianMixture

    return isinstance(obj, GaussianMixture)


def _is_bayesian(obj) -> bool:
    from .._bayesian import BayesianGaussianMixture

    return isinstance(obj, BayesianGaussianMixture)


def _is_mixture(obj) -> bool:
    # Duck typing keeps this module independent of the object model: a Mixture is a
    # sized iterable of components with ``mu``, ``cov`` and ``pi``.
    if not (hasattr(obj, "__iter__") and hasattr(obj, "__len__")):
        return False
    if hasattr(obj, "from_estimator") and hasattr(obj, "to_estimator"):
        return True
    try:
        items = list(obj)
    except TypeError:
        return False
    return bool(items) and all(
        hasattr(g, "mu") and hasattr(g, "cov") and hasattr(g, "pi") for g in items
    )


def _frame_to_json(frame) -> dict:
    """A pandas DataFrame of numbers as {index, columns, data}, NaN as null."""
    values = np.asarray(frame.to_numpy(dtype=np.float64, na_value=np.nan))
    return {
        "index": [_plain_or_str(i) for i in frame.index],
        "columns": [str(c) for c in frame.columns],
        "data": [[float(v) if math.isfinite(v) else None for v in row] for row in values],
    }


def _plain_or_str(value):
    try:
        return _plain(value)
    except TypeError:
        return str(value)


def _selection_metadata(result) -> dict:
    """What a model-selection result says beyond its best model (best effort)."""
    meta: dict[str, Any] = {}
    for name in ("best_model", "best_G", "bic_value", "icl_value", "loglik", "df", "n",
                 "criterion"):
        if hasattr(result, name):
            try:
                meta[name] = _plain(getattr(result, name))
            except TypeError:
                pass
    for name in ("bic", "icl"):
        frame = getattr(result, name, None)
        if frame is not None and hasattr(frame, "to_numpy") and hasattr(frame, "columns"):
            try:
                meta[name] = _frame_to_json(frame)
            except (TypeError, ValueError):
                pass
    return meta


def _estimator_content(gm) -> tuple[dict, dict[str, np.ndarray]]:
    if not hasattr(gm, "weights_"):
        raise ValueError(
            f"This {type(gm).__name__} instance is not fitted yet; call 'fit' before "
            "saving it."
        )
    from .._engine.namespaces import host_if_device

    # Fitted on a device (PyTorch, CuPy): the attributes live there; save host copies.
    dtype = np.asarray(host_if_device(gm.means_)).dtype
    if dtype.name not in ("float64", "float32"):
        raise ValueError(f"Cannot save parameters of dtype {dtype}: float64 or float32 only.")
    arrays = {
        name: np.ascontiguousarray(host_if_device(getattr(gm, name + "_")),
                                   dtype=dtype.newbyteorder("<"))
        for name in PARAMETER_ARRAYS
    }
    arrays["lower_bounds"] = np.asarray(gm.lower_bounds_, dtype="<f8").reshape(-1)
    params, dropped = {}, []
    for name, value in sorted(gm.get_params(deep=False).items()):
        try:
            params[name] = _plain(value)
        except TypeError:
            dropped.append(name)  # arrays (means_init, ...) or a RandomState instance
    previous = float(getattr(gm, "_previous_log_likelihood", -np.inf))
    lower_bound = float(gm.lower_bound_)  # -inf for a model that EM never ran on
    names = getattr(gm, "feature_names_in_", None)
    header = {
        "kind": "GaussianMixture",
        "covariance_type": gm.covariance_type,
        "n_components": int(gm.means_.shape[0]),
        "n_features": int(gm.means_.shape[1]),
        "feature_names": None if names is None else [str(n) for n in names],
        "dtype": dtype.name,
        "params": params,
        "dropped_params": dropped,
        "fitted": {
            "converged": bool(gm.converged_),
            "n_iter": int(gm.n_iter_),
            "lower_bound": lower_bound if math.isfinite(lower_bound) else None,
            "previous_log_likelihood": previous if math.isfinite(previous) else None,
        },
    }
    return header, arrays


def _bayesian_content(bgm) -> tuple[dict, dict[str, np.ndarray]]:
    """A BayesianGaussianMixture: the estimator's arrays, then its posterior and priors
    (float64, as fitted), the prior scalars and the fit's total row weight."""
    header, arrays = _estimator_content(bgm)
    dp = bgm.weight_concentration_prior_type == "dirichlet_process"
    concentration = np.stack(bgm.weight_concentration_) if dp else bgm.weight_concentration_
    posterior = {
        "weight_concentration": concentration,
        "mean_precision": bgm.mean_precision_,
        "degrees_of_freedom": np.reshape(bgm.degrees_of_freedom_, -1),
        "mean_prior": bgm.mean_prior_,
        "covariance_prior": np.reshape(bgm.covariance_prior_, _prior_shape(
            bgm.covariance_type, int(bgm.means_.shape[1]))),
    }
    for name, value in posterior.items():
        arrays[name] = np.ascontiguousarray(value, dtype="<f8")
    header["kind"] = "BayesianGaussianMixture"
    del header["fitted"]["previous_log_likelihood"]
    header["fitted"].update(
        total_weight=float(bgm._total_weight),
        weight_concentration_prior=float(bgm.weight_concentration_prior_),
        mean_precision_prior=float(bgm.mean_precision_prior_),
        degrees_of_freedom_prior=float(bgm.degrees_of_freedom_prior_),
    )
    return header, arrays


def _prior_shape(family, d):
    return {"full": (d, d), "tied": (d, d), "diag": (d,), "spherical": (1,)}[family]


def _posterior_shapes(header) -> dict[str, tuple[int, ...]]:
    k, d = header["n_components"], header["n_features"]
    family = header["covariance_type"]
    dp = header["params"]["weight_concentration_prior_type"] == "dirichlet_process"
    return {
        "weight_concentration": (2, k) if dp else (k,),
        "mean_precision": (k,),
        "degrees_of_freedom": (1,) if family == "tied" else (k,),
        "mean_prior": (d,),
        "covariance_prior": _prior_shape(family, d),
    }


def _mixture_content(mixture) -> tuple[dict, dict[str, np.ndarray]]:
    from .._engine.params import params_from_covariances

    components = list(mixture)
    if not components:
        raise ValueError("Cannot save a Mixture without components.")
    means = np.array([np.asarray(g.mu, dtype=np.float64).reshape(-1) for g in components])
    d = means.shape[1]
    covs = np.array([np.asarray(g.cov, dtype=np.float64).reshape(d, d) for g in components])
    weights = np.array([float(g.pi) for g in components])
    weights = weights / weights.sum()  # a Mixture normalises its weights wherever used
    # Precisions are derived exactly as the estimator derives them, so a loaded Mixture
    # and ``mixture.to_estimator()`` score alike.
    params = params_from_covariances(weights, means, covs, "full")
    arrays = {
        "weights": weights,
        "means": means,
        "covariances": covs,
        "precisions": params.precisions(),
        "precisions_cholesky": params.precisions_cholesky,
    }
    header = {
        "kind": "Mixture",
        "covariance_type": "full",
        "n_components": len(components),
        "n_features": int(d),
        "feature_names": None,
        "dtype": "float64",
        "params": {"reg_covar": _plain(getattr(mixture, "reg_covar", 1e-6))},
        "dropped_params": [],
        "fitted": None,
    }
    return header, {k: np.ascontiguousarray(v, dtype="<f8") for k, v in arrays.items()}


def save(model, path) -> None:
    """Save a fitted model to a model file, atomically.

    Parameters
    ----------
    model : GaussianMixture, BayesianGaussianMixture, Mixture, or a selection result
        A fitted :class:`GaussianMixture` or :class:`BayesianGaussianMixture` (its
        posterior and priors too); a :class:`Mixture` (stored as a
        full-covariance mixture and loaded back as a ``Mixture``); or an object with a
        fitted ``best`` estimator (as :func:`gaussmix.select` returns), whose best model
        is saved together with the selection's metadata (best model name and G, BIC and
        ICL tables) in the header.
    path : str or os.PathLike
        File to write (conventionally ``*.gmm``). An existing file is replaced only once
        the new one is complete.

    Raises
    ------
    ValueError
        If the model is not fitted or holds non-finite values.
    TypeError
        If ``model`` is none of the above.

    See Also
    --------
    load : read a model file back.
    """
    if _is_bayesian(model):
        header, arrays = _bayesian_content(model)
    elif _is_estimator(model):
        header, arrays = _estimator_content(model)
    elif _is_estimator(getattr(model, "best", None)):
        header, arrays = _estimator_content(model.best)
        header["selection"] = _selection_metadata(model)
    elif _is_mixture(model):
        header, arrays = _mixture_content(model)
    else:
        raise TypeError(
            f"Cannot save a {type(model).__name__}: pass a fitted gaussmix "
            "GaussianMixture or BayesianGaussianMixture, a Mixture, or the result of "
            "gaussmix.select."
        )
    from .. import __version__

    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "gaussmix_version": __version__,
        **header,
        "arrays": {
            name: {"shape": list(a.shape), "dtype": a.dtype.str} for name, a in arrays.items()
        },
    }
    # Refuse to write what ``load`` would refuse to read.
    _check_content(header, arrays, where=f"cannot save to {os.fspath(path)!r}")
    blob = json.dumps(header, indent=2, allow_nan=False).encode("utf-8")

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(HEADER_MEMBER, blob)
            for name, array in arrays.items():
                buffer = io.BytesIO()
                np.save(buffer, array, allow_pickle=False)
                zf.writestr(name + ".npy", buffer.getvalue())

    atomic_write(path, write)


# --------------------------------------------------------------------------- reading
def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _parse_json_int(text: str) -> int:
    # Length first: converting a many-digit string is itself costly.
    if len(text.lstrip("-")) > 16 or abs(int(text)) > _MAX_JSON_INT:
        raise ValueError(f"the number {text[:20]}{'...' if len(text) > 20 else ''} "
                         "is out of range")
    return int(text)


def _parse_json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as inf
        raise ValueError(f"the number {text[:20]}{'...' if len(text) > 20 else ''} "
                         "overflows a float")
    return value


def _require(header: dict, key: str, types, fail):
    if key not in header:
        fail(f"header lacks the field {key!r}")
    value = header[key]
    # bool is an int in Python: never accept it where a number is meant.
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        fail(f"header field {key!r} has the wrong type (bool)")
    if not isinstance(value, types):
        fail(f"header field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _parse_header(raw: bytes, fail) -> dict:
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant,
                            parse_int=_parse_json_int, parse_float=_parse_json_float)
    except (UnicodeDecodeError, ValueError) as exc:
        fail(f"{HEADER_MEMBER} is not valid JSON ({exc})")
    except RecursionError:
        fail(f"{HEADER_MEMBER} is nested too deeply")
    if not isinstance(header, dict):
        fail(f"{HEADER_MEMBER} is not a JSON object")
    if header.get("format") != FORMAT_NAME:
        fail(f"not a {FORMAT_NAME} file (format is {header.get('format')!r})")
    version = _require(header, "format_version", int, fail)
    if version > FORMAT_VERSION:
        fail(
            f"format version {version} is newer than this gaussmix reads "
            f"(version {FORMAT_VERSION}; file written by gaussmix "
            f"{header.get('gaussmix_version', '?')}): upgrade gaussmix"
        )
    if version != FORMAT_VERSION:
        fail(f"unknown format version {version} (this gaussmix reads {FORMAT_VERSION})")
    _require(header, "gaussmix_version", str, fail)
    kind = _require(header, "kind", str, fail)
    if kind not in KINDS:
        fail(f"unknown model kind {kind!r} (expected one of {', '.join(KINDS)})")
    cov_type = _require(header, "covariance_type", str, fail)
    try:
        _family(cov_type)
    except (KeyError, ValueError):
        fail(f"unknown covariance type {cov_type!r}")
    for key in ("n_components", "n_features"):
        if _require(header, key, int, fail) < 1:
            fail(f"header field {key!r} must be at least 1")
    names = _require(header, "feature_names", (list, type(None)), fail)
    if names is not None and (
        len(names) != header["n_features"] or not all(isinstance(n, str) for n in names)
    ):
        fail("feature_names must be n_features strings")
    if names is not None and len(set(names)) != len(names):
        duplicated = sorted(n for n, c in Counter(names).items() if c > 1)[:5]
        fail(f"feature_names repeat {', '.join(map(repr, duplicated))}")
    if _require(header, "dtype", str, fail) not in ("float64", "float32"):
        fail(f"unsupported dtype {header['dtype']!r} (expected float64 or float32)")
    _require(header, "params", dict, fail)
    _require(header, "dropped_params", list, fail)
    fitted = _require(header, "fitted", (dict, type(None)), fail)
    if kind in _FITTED_KINDS:
        if fitted is None:
            fail(f"a {kind} needs the 'fitted' field")
        _require(fitted, "converged", bool, fail)
        if _require(fitted, "n_iter", int, fail) < 0:
            fail("n_iter must be >= 0")
        _require(fitted, "lower_bound", (int, float, type(None)), fail)
    if kind == "GaussianMixture":
        _require(fitted, "previous_log_likelihood", (int, float, type(None)), fail)
    if kind == "BayesianGaussianMixture":
        for key in ("total_weight", "weight_concentration_prior", "mean_precision_prior",
                    "degrees_of_freedom_prior"):
            if not _require(fitted, key, (int, float), fail) > 0:
                fail(f"{key} must be positive")
        if header["params"].get("weight_concentration_prior_type") not in (
                "dirichlet_process", "dirichlet_distribution"):
            fail("params.weight_concentration_prior_type must be 'dirichlet_process' or "
                 "'dirichlet_distribution'")
        if cov_type not in ("full", "tied", "diag", "spherical"):
            fail(f"a BayesianGaussianMixture has no covariance type {cov_type!r}")
    _require(header, "arrays", dict, fail)
    if "selection" in header:
        _require(header, "selection", dict, fail)
    return header


def _expected_arrays(header: dict, n_lower_bounds: int | None) -> dict[str, tuple]:
    """name -> (shape, dtype) of every member the header calls for."""
    family = _family(header["covariance_type"])
    dtype = np.dtype(header["dtype"]).newbyteorder("<")  # files are little-endian
    shapes = _expected_shapes(family, header["n_components"], header["n_features"])
    expected = {name: (shape, dtype) for name, shape in shapes.items()}
    if header["kind"] in _FITTED_KINDS:
        expected["lower_bounds"] = ((n_lower_bounds,), np.dtype("<f8"))
    if header["kind"] == "BayesianGaussianMixture":
        for name, shape in _posterior_shapes(header).items():
            expected[name] = (shape, np.dtype("<f8"))
    return expected


def _check_content(header: dict, arrays: dict[str, np.ndarray], where: str) -> None:
    """Values a model can be built from: finite, positive where they must be."""

    def fail(problem):
        raise ModelFileError(f"{where}: {problem}")

    for name, array in arrays.items():
        if not np.all(np.isfinite(array)):
            fail(f"array {name!r} contains NaN or infinity")
    family = _family(header["covariance_type"])
    weights = arrays["weights"].astype(np.float64)
    tol = 1e-4 if header["dtype"] == "float32" else 1e-8
    if np.any(weights < 0) or abs(weights.sum() - 1.0) > tol * max(1, weights.size):
        fail("weights are not a probability vector (negative, or not summing to 1)")
    with np.errstate(all="ignore"):  # overflow to inf or NaN fails the checks below
        _check_covariances(header, arrays, family, fail)
    if header["kind"] == "BayesianGaussianMixture":
        _check_posterior(header, arrays, fail)


def _check_posterior(header: dict, arrays: dict[str, np.ndarray], fail):
    """The posterior's values valid, and the stored weights its mean weights."""
    from .._engine.variational import Posterior, mean_weights

    d = header["n_features"]
    for name in ("weight_concentration", "mean_precision"):
        if np.any(arrays[name] <= 0):
            fail(f"{name} must be positive")
    if np.any(arrays["degrees_of_freedom"] <= d - 1):
        fail(f"degrees_of_freedom must be greater than n_features - 1 = {d - 1}")
    prior = arrays["covariance_prior"]
    if prior.ndim == 2:
        try:
            np.linalg.cholesky(prior)
        except np.linalg.LinAlgError:
            fail("covariance_prior is not positive definite")
        if np.any(prior != prior.T):
            fail("covariance_prior is not symmetric")
    elif np.any(prior <= 0):
        fail("covariance_prior must be positive")
    weight_type = header["params"]["weight_concentration_prior_type"]
    concentration = arrays["weight_concentration"]
    if weight_type == "dirichlet_process":
        concentration = (concentration[0], concentration[1])
    posterior = Posterior(concentration, None, None, None, None, None, header["covariance_type"])
    implied = mean_weights(posterior, weight_type)
    tol = 1e-4 if header["dtype"] == "float32" else 1e-12
    if _exceeds(arrays["weights"].astype(np.float64) - implied, tol * implied + 1e-300):
        fail("weights are not the posterior mean of weight_concentration")


def _exceeds(error, bound) -> bool:
    """Whether any ``error`` is above its ``bound``, or either overflowed."""
    return bool(np.any(~(np.abs(error) <= bound) | ~np.isfinite(bound)))


def _check_covariances(header: dict, arrays: dict[str, np.ndarray], family: str, fail):
    """Precision factors, precisions and covariances: valid and consistent.

    Each stored array is compared with what the others imply, within a rounding bound
    for the file's dtype, so a file whose arrays disagree (one of them scaled, perturbed,
    made asymmetric or indefinite) is refused rather than loaded as a model that scores
    with one set of parameters and samples with another.
    """
    u = arrays["precisions_cholesky"].astype(np.float64)
    p = arrays["precisions"].astype(np.float64)
    c = arrays["covariances"].astype(np.float64)
    # Rounding bounds of the checks below. Products of stored arrays (P = U U^T, and
    # C U^2 = 1 elementwise) carry a few (D + 2) eps of relative error, componentwise.
    # U was computed from C by a Cholesky factorisation and an inverse, whose residual
    # U^T C U - I grows with sqrt(cond(C)) eps: sqrt(eps) per dimension covers every
    # matrix that Cholesky can factor, and still catches any disagreement beyond that.
    # Covariances are asymmetric at the rounding level of the data they were computed
    # from (|x_i| |x_j| eps, with cancellation for features far from 0 with a tiny
    # variance), not of the stored values: the data's scale is taken as |mean| + sd,
    # with a factor for the sums over rows. A Mixture stores exactly symmetric
    # covariances (its Gauss objects symmetrise them).
    d = header["n_features"]
    eps = float(np.finfo(np.float32 if header["dtype"] == "float32" else np.float64).eps)
    tol = 8 * (d + 2) * eps
    tol_inverse = (d + 2) * math.sqrt(eps)
    tol_symmetry = 0.0 if header["kind"] == "Mixture" else 64 * (d + 2) * eps
    tiny = 1e-300
    if family in ("full", "tied"):
        stacked_u = u if family == "full" else u[None]
        stacked_p = p if family == "full" else p[None]
        stacked_c = c if family == "full" else c[None]
        diag = np.diagonal(stacked_u, axis1=-2, axis2=-1)
        # A stored zero is +0: a -0 below the diagonal is a changed file (and would
        # load as a model that differs from the saved one in its bits).
        below = np.tril(stacked_u, -1)
        if np.any(diag <= 0) or np.any(below != 0) or np.any(np.signbit(below)):
            fail("precisions_cholesky is not upper triangular with a positive diagonal")
        abs_u = np.abs(stacked_u)
        product = stacked_u @ np.swapaxes(stacked_u, -1, -2)
        bound = abs_u @ np.swapaxes(abs_u, -1, -2)
        if _exceeds(product - stacked_p, tol * bound + tiny):
            fail("precisions do not match precisions_cholesky")
        cov_diag = np.diagonal(stacked_c, axis1=-2, axis2=-1)
        if np.any(cov_diag <= 0):
            fail("covariances have a non-positive diagonal")
        # |C_ij| <= sqrt(C_ii C_jj) for a positive definite C: the scale of each entry.
        scale = np.sqrt(cov_diag)
        data_scale = scale + np.abs(arrays["means"].astype(np.float64)).max(axis=0)
        outer = data_scale[:, :, None] * data_scale[:, None, :]
        if _exceeds(stacked_c - np.swapaxes(stacked_c, -1, -2), tol_symmetry * outer):
            fail("covariances are not symmetric")
        # Covariances and precisions are inverses: U^T C U = I, up to the rounding of C
        # and U (bounded by |U|^T |C| |U| <= v v^T with v = |U|^T sqrt(diag C)). C as
        # Cholesky factors it, from its lower triangle: its asymmetry is checked above.
        lower = np.tril(stacked_c)
        factored = lower + np.swapaxes(np.tril(stacked_c, -1), -1, -2)
        identity = np.swapaxes(stacked_u, -1, -2) @ factored @ stacked_u
        identity -= np.eye(d)
        v = np.swapaxes(abs_u, -1, -2) @ scale[:, :, None]
        if _exceeds(identity, tol_inverse * (v @ np.swapaxes(v, -1, -2)) + tiny):
            fail("covariances are not the inverses of the precisions")
        try:
            np.linalg.cholesky(stacked_c)
        except np.linalg.LinAlgError:
            fail("covariances are not positive definite")
    else:
        if np.any(u <= 0):
            fail("precisions_cholesky must be positive")
        if _exceeds(u * u - p, tol * (u * u) + tiny):
            fail("precisions do not match precisions_cholesky")
        if np.any(c <= 0):
            fail("covariances must be positive")
        if _exceeds(c * (u * u) - 1.0, tol):
            fail("covariances are not the inverses of the precisions")


def _nbytes(shape, dtype) -> int:
    # Python integers: a header's shape cannot overflow this product.
    return math.prod(shape) * dtype.itemsize


def _check_sizes(zf: zipfile.ZipFile, expected: dict, archive_size: int, fail) -> None:
    """Refuse, before reading any member, what the zip directory and the header disagree on.

    Each member's uncompressed size (from the zip directory) must be its header shape's
    byte count plus a ``.npy`` header; its compressed size must be able to expand to that
    (deflate expands at most ~1032 times) and all members must fit in the file; and the
    arrays together must be plausible for a file of this size. Reading then never
    allocates more than the directory announces.
    """
    total_needed = 0
    total_compressed = 0
    for name, (shape, dtype) in expected.items():
        info = zf.getinfo(name + ".npy")
        needed = _nbytes(shape, dtype)
        total_needed += needed
        total_compressed += info.compress_size
        if info.file_size > needed + _NPY_HEADER_SLACK:
            fail(f"member {name}.npy is larger than its header shape {tuple(shape)} allows")
        if info.file_size < needed + _NPY_MIN_HEADER:
            fail(f"member {name}.npy ({info.file_size} bytes) is smaller than its header "
                 f"shape {tuple(shape)} requires ({needed} bytes of data)")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.compress_size != info.file_size:
                fail(f"member {name}.npy is stored uncompressed but its sizes differ")
        elif (info.compress_type == zipfile.ZIP_DEFLATED
              and info.compress_size * _DEFLATE_MAX_RATIO + 64 < info.file_size):
            fail(f"member {name}.npy claims to expand {info.compress_size} compressed "
                 f"bytes to {info.file_size}, more than deflate can")
    if total_compressed > archive_size:
        fail(f"the zip directory claims {total_compressed} bytes of members in a file "
             f"of {archive_size} bytes")
    if total_needed > _FREE_ARRAY_BYTES + _MAX_EXPANSION * archive_size:
        fail(f"the header claims arrays of {total_needed} bytes in all, implausibly many "
             f"for a file of {archive_size} bytes (n_components="
             f"{expected['weights'][0][0]}, n_features={expected['means'][0][1]})")


def _read_member(zf: zipfile.ZipFile, name: str, shape, dtype, fail) -> np.ndarray:
    """One ``.npy`` member, checked against (shape, dtype) before anything is allocated.

    The ``.npy`` header is parsed here rather than by ``numpy.load``, which would allocate
    whatever shape the member claims before its size could be checked.
    """
    info = zf.getinfo(name + ".npy")
    needed = _nbytes(shape, dtype)
    # Read nothing bigger than the header allows: a crafted member cannot exhaust memory.
    if info.file_size > needed + _NPY_HEADER_SLACK:
        fail(f"member {name}.npy is larger than its header shape {tuple(shape)} allows")
    raw = zf.read(info)
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            npy_shape, fortran, npy_dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            npy_shape, fortran, npy_dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except (ValueError, TypeError, SyntaxError, KeyError, RecursionError,
            MemoryError) as exc:
        fail(f"member {name}.npy is not a plain numeric .npy array ({exc})")
    if npy_dtype != dtype or npy_dtype.hasobject:
        fail(f"array {name!r} has dtype {npy_dtype.str}, expected {dtype.str}")
    if tuple(npy_shape) != tuple(shape):
        fail(f"array {name!r} has shape {tuple(npy_shape)}, expected {tuple(shape)}")
    if fortran and len(shape) > 1:
        fail(f"array {name!r} is in Fortran order (C order expected)")
    data = raw[stream.tell():]
    if len(data) != needed:
        fail(f"member {name}.npy holds {len(data)} bytes of data, its shape "
             f"{tuple(shape)} needs {needed}")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _invalid_file(path):
    """``fail(problem)``: raise a ModelFileError that names the file."""
    where = f"invalid model file {os.fspath(path)!r}"

    def fail(problem):
        raise ModelFileError(f"{where}: {problem}")

    return fail


def _read(path) -> tuple[dict, dict[str, np.ndarray]]:
    path = os.fspath(path)
    fail = _invalid_file(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a directory, not a model file")
    with open(path, "rb") as handle:  # a missing or unreadable file raises OSError here
        return _read_archive(path, handle, fail)


def _read_archive(path, handle, fail):
    try:
        archive_size = handle.seek(0, os.SEEK_END)
        handle.seek(0)
        with zipfile.ZipFile(handle) as zf:
            names = zf.namelist()
            if len(set(names)) != len(names):
                fail("the archive holds a member twice")
            if HEADER_MEMBER not in names:
                fail(f"no {HEADER_MEMBER} member (not a gaussmix model file?)")
            if zf.getinfo(HEADER_MEMBER).file_size > _MAX_HEADER_BYTES:
                fail(f"{HEADER_MEMBER} is implausibly large")
            header = _parse_header(zf.read(HEADER_MEMBER), fail)
            n_lb = None
            if header["kind"] in _FITTED_KINDS:
                lb = header["arrays"].get("lower_bounds", {})
                shape = lb.get("shape") if isinstance(lb, dict) else None
                if not (isinstance(shape, list) and len(shape) == 1
                        and isinstance(shape[0], int) and not isinstance(shape[0], bool)
                        and 0 <= shape[0] <= max(header["fitted"]["n_iter"], 0) + 1):
                    fail("arrays.lower_bounds must give a shape (n,) with n <= n_iter + 1")
                n_lb = shape[0]
            expected = _expected_arrays(header, n_lb)
            listed = {
                name: (tuple(spec["shape"]) if isinstance(spec.get("shape"), list)
                       else None, spec.get("dtype"))
                for name, spec in header["arrays"].items() if isinstance(spec, dict)
            }
            wanted = {name: (shape, dt.str) for name, (shape, dt) in expected.items()}
            if listed != wanted:
                fail(
                    "the header's array list does not match its model "
                    f"(expected {sorted(wanted)} with the model's shapes)"
                )
            members = {n[:-4] for n in names if n != HEADER_MEMBER and n.endswith(".npy")}
            unknown = sorted(set(names) - {HEADER_MEMBER} - {m + ".npy" for m in expected})
            if unknown:
                fail(f"unexpected member(s) {', '.join(unknown)}")
            missing = sorted(set(expected) - members)
            if missing:
                fail(f"missing member(s) {', '.join(m + '.npy' for m in missing)}")
            _check_sizes(zf, expected, archive_size, fail)
            arrays = {
                name: _read_member(zf, name, shape, dtype, fail)
                for name, (shape, dtype) in expected.items()
            }
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            NotImplementedError, RuntimeError, struct.error, ValueError,
            OverflowError) as exc:
        # Whatever a damaged archive makes the zip reader raise (CRC mismatch, bad
        # offsets, truncated streams) is the same problem to the user.
        fail(f"corrupted or truncated archive ({str(exc) or type(exc).__name__})")
    _check_content(header, arrays, where=f"invalid model file {path!r}")
    return header, arrays


def read_header(path) -> dict:
    """The validated JSON header of a model file (metadata only, no model built).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    header : dict
        Format version, kind, covariance type, shapes, feature names, fitted scalars,
        constructor parameters and, for files saved from a selection result, its
        ``selection`` metadata. See ``docs/cli.md``.

    Raises
    ------
    ModelFileError
        If the file is not a valid model file.
    """
    return _read(path)[0]


def _constructed(cls, header: dict, fail):
    """An unfitted ``cls`` with the header's parameters, known and valid."""
    params = dict(header["params"])
    unknown = sorted(set(params) - set(cls().get_params()))
    if unknown:
        fail(f"unknown estimator parameter(s) {', '.join(unknown)}")
    params["n_components"] = header["n_components"]
    params["covariance_type"] = header["covariance_type"]
    estimator = cls(**params)
    try:
        estimator._validate_params()
    except ValueError as exc:
        fail(f"invalid estimator parameters ({exc})")
    return estimator


def _build_estimator(header: dict, arrays: dict[str, np.ndarray], fail):
    from .._engine.params import make_params
    from .._estimator import GaussianMixture, set_fitted

    gm = _constructed(GaussianMixture, header, fail)
    fitted = header["fitted"] or {}
    lower_bound = fitted.get("lower_bound")
    previous = fitted.get("previous_log_likelihood")
    # The stored arrays as they are (their dtype too): nothing is recomputed.
    params = make_params(arrays["weights"], arrays["means"], arrays["covariances"],
                         arrays["precisions_cholesky"], _family(header["covariance_type"]))
    return set_fitted(
        gm, params, n_features=header["n_features"],
        converged=fitted.get("converged", False), n_iter=fitted.get("n_iter", 0),
        lower_bound=-np.inf if lower_bound is None else lower_bound,
        lower_bounds=arrays.get("lower_bounds", ()),
        previous_log_likelihood=-np.inf if previous is None else previous,
        feature_names=header["feature_names"], dtype=arrays["means"].dtype,
        precisions=arrays["precisions"],
    )


def _build_bayesian(header: dict, arrays: dict[str, np.ndarray], fail):
    from .._bayesian import BayesianGaussianMixture

    bgm = _constructed(BayesianGaussianMixture, header, fail)
    fitted = header["fitted"]
    for name in PARAMETER_ARRAYS:  # the stored arrays as they are, their dtype too
        setattr(bgm, name + "_", arrays[name])
    concentration = arrays["weight_concentration"]
    if bgm.weight_concentration_prior_type == "dirichlet_process":
        concentration = (concentration[0], concentration[1])
    bgm.weight_concentration_ = concentration
    bgm.mean_precision_ = arrays["mean_precision"]
    dof = arrays["degrees_of_freedom"]
    bgm.degrees_of_freedom_ = float(dof[0]) if bgm.covariance_type == "tied" else dof
    bgm.mean_prior_ = arrays["mean_prior"]
    prior = arrays["covariance_prior"]
    bgm.covariance_prior_ = float(prior[0]) if bgm.covariance_type == "spherical" else prior
    bgm.weight_concentration_prior_ = fitted["weight_concentration_prior"]
    bgm.mean_precision_prior_ = fitted["mean_precision_prior"]
    bgm.degrees_of_freedom_prior_ = fitted["degrees_of_freedom_prior"]
    bgm.converged_ = fitted["converged"]
    bgm.n_iter_ = fitted["n_iter"]
    lower_bound = fitted["lower_bound"]
    bgm.lower_bound_ = -np.inf if lower_bound is None else float(lower_bound)
    bgm.lower_bounds_ = [float(v) for v in arrays["lower_bounds"]]
    bgm.n_features_in_ = header["n_features"]
    if header["feature_names"] is not None:
        bgm.feature_names_in_ = np.asarray(header["feature_names"], dtype=object)
    bgm._total_weight = float(fitted["total_weight"])
    return bgm


def _load(path):
    """(header, fitted estimator) of a model file."""
    header, arrays = _read(path)
    build = (_build_bayesian if header["kind"] == "BayesianGaussianMixture"
             else _build_estimator)
    return header, build(header, arrays, _invalid_file(path))


def load_estimator(path):
    """Load any model file as a fitted :class:`GaussianMixture` (a ``Mixture`` file too).

    What the command line uses: predictions and scores come from the stored arrays
    directly, without the object model in between.
    """
    return _load(path)[1]


def load(path):
    """Load a model file written by :func:`save`, without executing any code from it.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    model : GaussianMixture, BayesianGaussianMixture or Mixture
        A fitted estimator that predicts and scores exactly as the saved one did, or a
        :class:`Mixture` for files saved from one. For a file saved from a
        selection result, its best model (the metadata is in :func:`read_header`).

    Raises
    ------
    ModelFileError
        (a ``ValueError``) if the file is not a zip archive, is truncated or corrupted,
        misses or adds members, has arrays whose shape, dtype or values disagree with its
        header, or was written in an unknown format version. The message names the file.
    FileNotFoundError
        If there is no such file.
    """
    header, gm = _load(path)
    if header["kind"] == "Mixture":
        from .._mixture import Mixture

        try:
            return Mixture.from_estimator(gm)
        except ValueError as exc:  # what the checks above let through, Gauss refuses
            _invalid_file(path)(f"not a valid Mixture ({exc})")
    return gm
