"""Input checks with messages that name the problem and the fix.

Messages a scikit-learn user may match on are worded as scikit-learn words them.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg


# scikit-learn's message fragments, and the advice gaussmix adds to each.
_X_ADVICE = [
    ("while dim <= 2 is required", " Pass a 2-D array of shape (n_samples, n_features); "
     "reshape or flatten extra dimensions first."),
    ("could not convert", " X must be numeric: encode categorical columns as numbers "
     "(e.g. sklearn.preprocessing.OneHotEncoder) or drop them."),
    ("inhomogeneous", " X looks ragged (rows of different lengths): every row must have "
     "the same number of features."),
    ("is expecting", " Pass data with the columns the model was fitted on."),
    ("a minimum of 2 is required", " A mixture needs at least 2 samples."),
]


def with_advice(error: ValueError) -> ValueError:
    """The same error with a sentence on how to fix it, where gaussmix knows one."""
    message = str(error)
    for fragment, advice in _X_ADVICE:
        if fragment in message and advice not in message:
            return ValueError(message + advice)
    return error


def check_sample_weight(sample_weight, n_samples, dtype):
    """Validated row weights as a float array of shape (n_samples,), or None."""
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            "sample_weight must be numeric: pass one non-negative number per row of X."
        ) from None
    if w.ndim == 0:
        w = np.full(n_samples, float(w))
    if w.ndim != 1:
        raise ValueError(
            f"Sample weights must be 1D array or scalar, got {w.ndim}D array of shape "
            f"{w.shape}; pass one weight per row of X."
        )
    if w.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight.shape == {w.shape}, expected ({n_samples},)! "
            f"Pass one weight per row of X ({n_samples} rows)."
        )
    if not np.all(np.isfinite(w)):
        raise ValueError(
            "sample_weight contains NaN or infinity; every weight must be a finite "
            "number >= 0 (use 0 to leave a row out)."
        )
    if np.any(w < 0):
        raise ValueError(
            "Negative values in data passed to sample_weight; weights count how often "
            "a row was seen and must be >= 0."
        )
    if not np.any(w > 0):
        raise ValueError(
            "Sample weights must contain at least one positive value; all weights are "
            "zero, so there is nothing to fit."
        )
    # Only the weights' ratios matter: scale them by a power of two (exactly) so the
    # largest lies in [1, 2), and no common scale of theirs can underflow, overflow or
    # reach the fit's guards (1e-300 or 1e300 weights fit as 1).
    # (If the weights span more than float64's range, the smallest positive one is
    # kept a normal number instead.)
    exponent = np.frexp(w.max())[1] - 1
    exponent = min(exponent, np.frexp(w[w > 0].min())[1] + 1021)
    if exponent:
        w = np.ldexp(w, -exponent)
    return w.astype(dtype, copy=False)


def _check_shape(param, shape, name):
    if param.shape != shape:
        raise ValueError(
            f"The parameter '{name}' should have the shape of {shape}, but got "
            f"{param.shape}"
        )


def _as_float_array(value, name, dtype):
    try:
        arr = np.array(value, dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError(f"The parameter '{name}' must be a numeric array.") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"The parameter '{name}' contains NaN or infinity.")
    return arr


def check_weights(weights, n_components, dtype):
    """Validated ``weights_init``."""
    weights = _as_float_array(weights, "weights", dtype)
    _check_shape(weights, (n_components,), "weights")
    if np.any(weights < 0.0) or np.any(weights > 1.0):
        # scikit-learn's words (its users match on them), then the facts plainly.
        raise ValueError(
            "The parameter 'weights' should be in the range [0, 1], but got max value "
            f"{weights.min():.5f}, min value {weights.max():.5f} (the weights range "
            f"from {weights.min():.5f} to {weights.max():.5f}; pass proportions in "
            "[0, 1] that sum to 1)"
        )
    atol = 1e-6 if weights.dtype == np.float32 else 1e-8
    if not np.allclose(abs(1.0 - weights.sum()), 0.0, atol=atol):
        raise ValueError(
            "The parameter 'weights' should be normalized, but got sum(weights) = "
            f"{weights.sum():.5f}"
        )
    return weights


def check_means(means, n_components, n_features, dtype):
    """Validated ``means_init``."""
    means = _as_float_array(means, "means", dtype)
    _check_shape(means, (n_components, n_features), "means")
    return means


def check_precisions(precisions, family, n_components, n_features, dtype):
    """Validated ``precisions_init`` in the family's layout."""
    precisions = _as_float_array(precisions, f"{family} precision", dtype)
    shapes = {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }
    _check_shape(precisions, shapes[family], f"{family} precision")
    if family in ("full", "tied"):
        stacked = precisions if family == "full" else precisions[None]
        for p in stacked:
            if not (np.allclose(p, p.T) and np.all(linalg.eigvalsh(p) > 0.0)):
                raise ValueError(f"'{family} precision' should be symmetric, positive-definite")
    elif np.any(precisions <= 0.0):
        raise ValueError(f"'{family} precision' should be positive")
    return precisions


# ------------------------------------------------------------- scalar parameters
# The checks every public face runs on its scalar arguments: a ValueError (TypeError
# for a value of the wrong kind) that names the parameter and says what to pass.
def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def check_int(value, name, *, minimum=None, maximum=None, allow_none=False,
              what=None):
    """``value`` as a Python int in [minimum, maximum]; None passes if allowed."""
    if value is None and allow_none:
        return None
    hint = what or _int_hint(minimum, maximum, allow_none)
    # Integers only, as scikit-learn checks them: a float (even 2.0, or 1e300 steps)
    # is a mistake to point out, not a number to round.
    if _is_bool(value) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be {hint}, got {value!r} of type "
                        f"{type(value).__name__}.")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None
                                                       and value > maximum):
        raise ValueError(f"{name} must be {hint}, got {value!r}.")
    return value


def _int_hint(minimum, maximum, allow_none):
    if minimum is not None and maximum is not None:
        text = f"an integer in [{minimum}, {maximum}]"
    elif minimum is not None:
        text = f"an integer >= {minimum}"
    elif maximum is not None:
        text = f"an integer <= {maximum}"
    else:
        text = "an integer"
    return text + (" (or None)" if allow_none else "")


def check_real(value, name, *, minimum=None, inclusive=True, allow_none=False,
               what=None):
    """``value`` as a finite float (> or >= minimum); None passes if allowed."""
    if value is None and allow_none:
        return None
    if minimum is None:
        hint = "a finite number"
    else:
        hint = f"a finite number {'>=' if inclusive else '>'} {minimum}"
    hint = what or (hint + (" (or None)" if allow_none else ""))
    if _is_bool(value) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be {hint}, got {value!r} of type "
                        f"{type(value).__name__}.")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be {hint}, got {value!r}.")
    if minimum is not None and (value < minimum or (not inclusive and value == minimum)):
        raise ValueError(f"{name} must be {hint}, got {value!r}.")
    return value


def check_random_state(value, name="random_state"):
    """None, an int >= 0, or a numpy Generator / RandomState, as numpy accepts them."""
    if value is None or isinstance(value, (np.random.Generator, np.random.RandomState,
                                           np.random.SeedSequence,
                                           np.random.BitGenerator)):
        return value
    return check_int(value, name, minimum=0,
                     what="None, an integer seed >= 0 or a numpy Generator")


def check_bool(value, name):
    """``value`` as a bool (True, False, or numpy's)."""
    if not _is_bool(value):
        raise TypeError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


# reg_covar is added to every component's variance. At 1% of a feature's variance it
# doubles the variance of a component a tenth as wide as the feature, and near 100% it
# merges every component into one: warn from 1% on.
REG_COVAR_WARN_FRACTION = 0.01


def feature_variances(stats) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's variance and mean over all rows, from one E-step's statistics."""
    n = stats.nk.sum()
    mean = stats.nk @ stats.means / n
    within = {"full": lambda s: np.diagonal(s, axis1=1, axis2=2).sum(axis=0),
              "diag": lambda s: s.sum(axis=0), "tied": np.diag}[stats.kind](stats.scatter)
    return (within + stats.nk @ (stats.means - mean) ** 2) / n, mean


def warn_if_reg_covar_swamps(stats, reg_covar, feature_names=None) -> None:
    """Warn when ``reg_covar`` is large against the variance of a (non-constant) feature."""
    variances, mean = feature_variances(stats)
    # A constant column is what reg_covar is for; below rounding, a variance is zero.
    rounding = (1e3 * np.finfo(stats.means.dtype).eps * np.abs(mean)) ** 2
    swamped = np.flatnonzero((variances > rounding)
                             & (reg_covar >= REG_COVAR_WARN_FRACTION * variances))
    if swamped.size == 0:
        return
    names = [str(feature_names[i]) if feature_names is not None else f"x{i}"
             for i in swamped[:5]]
    smallest = variances[swamped].min()
    warnings.warn(
        f"reg_covar={reg_covar:g} is large against the variance of feature(s) "
        f"{', '.join(names)}{', ...' if swamped.size > 5 else ''} (smallest "
        f"{smallest:.3g}): it is added to every component's variance and can make "
        "components identical. Scale the data (e.g. sklearn.preprocessing."
        f"StandardScaler) or lower reg_covar (e.g. reg_covar={1e-6 * smallest:.1g}; "
        "--reg-covar in the gaussmix command).",
        UserWarning, stacklevel=5)  # < _fit < fit context < fit < caller
