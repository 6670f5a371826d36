"""Array-API namespaces and devices: recognising such inputs and moving arrays across.

Nothing here imports ``array_api_compat`` (or PyTorch, CuPy) until an input that is
not a NumPy array asks for it, so ``import gaussmix`` stays light and NumPy fits never
pay for the optional extra.
"""

from __future__ import annotations

import sys

import numpy as np

_EXTRA_HINT = ("Install the optional extra: pip install 'gaussmix[array-api]' "
               "(it brings array-api-compat).")


def _compat():
    try:
        import array_api_compat
    except ImportError:
        try:  # scikit-learn (a dependency) vendors a copy
            from sklearn.externals import array_api_compat
        except ImportError:
            raise ImportError("Array-API inputs need array-api-compat. "
                              + _EXTRA_HINT) from None
    return array_api_compat


def dispatch_enabled() -> bool:
    """Whether scikit-learn's ``array_api_dispatch`` is on (``sklearn.set_config``)."""
    if "sklearn" not in sys.modules:  # never imported: never configured
        return False
    from sklearn import get_config

    return bool(get_config().get("array_api_dispatch", False))


def is_device_array(X) -> bool:
    """True for an array of an array-API library other than NumPy (PyTorch, CuPy,
    array-api-strict, ...): the inputs the device producer runs on.

    Lists, NumPy arrays, pandas frames and Dask arrays are not (Dask has its own
    producer and is checked first by the faces).
    """
    if X is None or isinstance(X, (np.ndarray, list, tuple, int, float)):
        return False
    module = type(X).__module__.split(".")[0]
    if module in ("numpy", "pandas", "dask", "polars", "pyarrow", "scipy", "builtins"):
        return False
    if not (hasattr(X, "__array_namespace__") or hasattr(X, "__dlpack__")):
        return False
    compat = _compat()
    return compat.is_array_api_obj(X) and not compat.is_numpy_array(X)


def namespace_of(X):
    """``(xp, device)``: the array-API namespace (array-api-compat's wrapper where
    there is one) and the device of ``X``."""
    compat = _compat()
    return compat.array_namespace(X), compat.device(X)


def to_numpy(x) -> np.ndarray:
    """A NumPy copy (or view) of an array of any namespace, from any device."""
    if x is None or isinstance(x, np.ndarray):
        return x
    if not is_device_array(x):
        return np.asarray(x)
    compat = _compat()
    if compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    if compat.is_cupy_array(x):
        return x.get()
    # array-api-strict and others: DLPack reads across their (virtual) devices, where
    # __array__ is refused on purpose.
    try:
        return np.from_dlpack(x)
    except (TypeError, RuntimeError, BufferError, ValueError):
        return np.asarray(x)


def host_if_device(x):
    """``x`` as NumPy if it is a device array, else unchanged (constructor arguments
    such as ``means_init`` may be arrays of the data's namespace)."""
    return to_numpy(x) if is_device_array(x) else x


def to_namespace(x, xp, device):
    """A NumPy array (or scalar) as an array of namespace ``xp`` on ``device``."""
    return xp.asarray(np.ascontiguousarray(x), device=device)
