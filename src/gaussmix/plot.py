"""Pictures of Gaussian mixtures: data, component ellipses, EM's progress.

Every function takes a fitted model — a :class:`gaussmix.Mixture`, or a fitted
``GaussianMixture`` from gaussmix or scikit-learn with any ``covariance_type`` (tied,
diagonal and spherical covariances are drawn as the equivalent full matrices) — and
returns the matplotlib ``Axes`` or ``Figure`` it drew on, so you can restyle it.

Headless-safe: nothing here selects a backend or opens a window. Pass ``ax=`` to draw
into your own figure. Without it, a new figure is made with ``pyplot`` if your program
has already imported ``matplotlib.pyplot`` (so ``plt.show()`` and notebooks display it),
and otherwise as a bare :class:`matplotlib.figure.Figure` on the Agg canvas, which
``savefig`` writes without any display and which no global figure list keeps alive.

Functions
---------
scatter            data coloured by cluster or by responsibilities
ellipses           component ellipses at 1, 2 and 3 standard deviations, means marked
mixture            the two together
log_likelihood     the log-likelihood over EM iterations
pairs              a grid of 2-D projections for D > 2, with the projected ellipses
progress           a grid of frames of EM's progress
animate            the same as an animated GIF
ellipse_geometry   width, height and angle of a covariance's n-sd ellipse
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from ._mixture import Gauss, Mixture, estimator_parameters

__all__ = [
    "animate",
    "ellipse_geometry",
    "ellipses",
    "log_likelihood",
    "mixture",
    "pairs",
    "progress",
    "scatter",
]

DEFAULT_N_STD = (1, 2, 3)
_NEUTRAL = (0.35, 0.35, 0.35, 1.0)


# ---------------------------------------------------------------- helpers
def _new_figure(figsize=None, managed=None, layout=None):
    """A figure: pyplot's if pyplot is in use (or ``managed``), else a bare Agg one."""
    if managed is None:
        managed = "matplotlib.pyplot" in sys.modules
    if managed:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, layout=layout)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _axes(ax, figsize=(6.0, 5.0)):
    if ax is not None:
        return ax
    # Constrained layout keeps labels inside a figure we made, whatever is drawn.
    return _new_figure(figsize, layout="constrained").add_subplot()


def _parameters(model):
    """(weights (K,), means (K, D), covariances (K, D, D)) of any supported model."""
    if isinstance(model, Mixture):
        return model.weights, model.means, model.covariances
    if isinstance(model, tuple) and len(model) == 3:
        weights, means, covs = (np.asarray(a, dtype=np.float64) for a in model)
        return weights, means, covs
    if hasattr(model, "means_") or hasattr(model, "fit"):
        return estimator_parameters(model)  # says "fit it first" if it is not fitted
    raise TypeError(
        "Expected a gaussmix Mixture, a fitted GaussianMixture (gaussmix or "
        f"scikit-learn) or a (weights, means, covariances) tuple, got "
        f"{type(model).__name__}."
    )


def _predictor(model):
    """Something with ``predict`` and ``predict_proba`` for any supported model."""
    if isinstance(model, tuple):
        weights, means, covs = _parameters(model)
        return Mixture(Gauss(m, c, w) for w, m, c in zip(weights, means, covs))
    return model


def _colors(n):
    """n distinct RGBA colours (tab10, then tab20, then evenly spaced hues)."""
    from matplotlib import colormaps

    if n <= 10:
        cmap = colormaps["tab10"]
        return [cmap(i) for i in range(n)]
    if n <= 20:
        cmap = colormaps["tab20"]
        return [cmap(i) for i in range(n)]
    cmap = colormaps["hsv"]
    return [cmap(i / n) for i in range(n)]


def _check_dims(dims, n_features):
    i, j = (int(d) for d in dims)
    if not (0 <= i < n_features and 0 <= j < n_features) or i == j:
        raise ValueError(
            f"dims must be two different feature indices in [0, {n_features}), got "
            f"{tuple(dims)}."
        )
    return i, j


def _names(feature_names, n_features):
    if feature_names is None:
        return [f"x{d}" for d in range(n_features)]
    names = [str(name) for name in feature_names]
    if len(names) != n_features:
        raise ValueError(
            f"feature_names has {len(names)} names, but the model has {n_features} "
            "features."
        )
    return names


def _check_X(X, n_features=None):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array of rows, got shape {X.shape}.")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, but the model has {n_features}.")
    return X


def ellipse_geometry(cov, n_std=1.0):
    """The ellipse of points ``n_std`` standard deviations from the mean.

    Parameters
    ----------
    cov : array-like of shape (2, 2)
        A 2-D covariance (for a projection, the 2x2 sub-block of the full matrix).
    n_std : float, default=1.0

    Returns
    -------
    width, height : float
        Full lengths of the major and minor axes: ``2 * n_std * sqrt(eigenvalue)``.
    angle : float
        Angle of the major axis from the x axis, in degrees, in (-90, 90].
    """
    cov = np.asarray(cov, dtype=np.float64)
    if cov.shape != (2, 2):
        raise ValueError(f"cov must be 2x2, got shape {cov.shape}.")
    eigenvalues, eigenvectors = np.linalg.eigh((cov + cov.T) / 2.0)
    eigenvalues = np.maximum(eigenvalues, 0.0)  # rounding must not give sqrt(-0)
    major = eigenvectors[:, 1]
    angle = float(np.degrees(np.arctan2(major[1], major[0])))
    if angle <= -90.0:
        angle += 180.0
    elif angle > 90.0:
        angle -= 180.0
    width = 2.0 * n_std * float(np.sqrt(eigenvalues[1]))
    height = 2.0 * n_std * float(np.sqrt(eigenvalues[0]))
    return width, height, angle


# --------------------------------------------------------------- drawing
def scatter(X, model=None, *, labels=None, color_by="cluster", ax=None, dims=(0, 1),
            s=22, **kwargs):
    """Scatter the rows of X, coloured by cluster or by responsibilities.

    Parameters
    ----------
    X : array-like of shape (n, D)
    model : Mixture or fitted GaussianMixture, optional
        Gives the clusters (``predict``) or responsibilities (``predict_proba``)
        when ``labels`` is None.
    labels : array-like of shape (n,), optional
        Colour by these labels (e.g. the true clusters) instead of the model's.
    color_by : {"cluster", "responsibility", "none"}, default="cluster"
        "responsibility" mixes the component colours in proportion to each row's
        responsibilities, so uncertain rows show as blends; "none" draws every row
        in one neutral colour.
    ax : matplotlib Axes, optional
    dims : (int, int), default=(0, 1)
        The two features to show.
    s : float, default=22
        Marker size.
    **kwargs
        Passed to ``Axes.scatter``.

    Returns
    -------
    ax : matplotlib Axes
    """
    X = _check_X(X)
    i, j = _check_dims(dims, X.shape[1])
    ax = _axes(ax)
    _draw_points(ax, X, _point_colors(X, model, labels, color_by), i, j, s, **kwargs)
    return ax


def _point_colors(X, model, labels, color_by):
    """One RGBA colour per row of X, as :func:`scatter` describes."""
    if color_by not in ("cluster", "responsibility", "none"):
        raise ValueError(
            "color_by must be 'cluster', 'responsibility' or 'none', got "
            f"{color_by!r}."
        )
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (X.shape[0],):
            raise ValueError(f"labels must have one entry per row of X ({X.shape[0]}).")
        values, codes = np.unique(labels, return_inverse=True)
        return np.array(_colors(len(values)))[codes]
    if model is None or color_by == "none":
        return np.array([_NEUTRAL] * X.shape[0])
    n_components = _parameters(model)[0].shape[0]
    palette = np.array(_colors(n_components))
    predictor = _predictor(model)
    with warnings.catch_warnings():
        # An estimator fitted on a DataFrame is plotted from a bare array.
        warnings.filterwarnings("ignore", message="X does not have valid feature")
        if color_by == "responsibility":
            resp = np.asarray(predictor.predict_proba(X))
            return np.clip(resp @ palette, 0.0, 1.0)
        return palette[np.asarray(predictor.predict(X))]


def _draw_points(ax, X, colors, i, j, s, **kwargs):
    kwargs.setdefault("edgecolors", "white")
    kwargs.setdefault("linewidths", 0.4)
    kwargs.setdefault("zorder", 2)
    ax.scatter(X[:, i], X[:, j], c=colors, s=s, **kwargs)


def ellipses(model, *, ax=None, dims=(0, 1), n_std=DEFAULT_N_STD, colors=None,
             fill=True, mark_means=True, linewidth=1.5):
    """Draw each component's ellipses at ``n_std`` standard deviations.

    For more than two features the ellipses are those of the Gaussian projected onto
    ``dims``: the 2x2 sub-block of its covariance.

    Parameters
    ----------
    model : Mixture or fitted GaussianMixture
    ax : matplotlib Axes, optional
    dims : (int, int), default=(0, 1)
    n_std : sequence of float, default=(1, 2, 3)
    colors : sequence of colours, optional
        One per component; default tab10.
    fill : bool, default=True
        Shade the ellipses lightly (fainter further out).
    mark_means : bool, default=True
        Mark each mean with a cross.
    linewidth : float, default=1.5
        Width of the innermost ellipse; outer ones are thinner.

    Returns
    -------
    ax : matplotlib Axes
        Ellipses are ``matplotlib.patches.Ellipse`` in ``ax.patches``, component by
        component, innermost first; means are one collection in ``ax.collections``.
    """
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Ellipse

    _, means, covs = _parameters(model)
    i, j = _check_dims(dims, means.shape[1])
    n_std = sorted(float(v) for v in np.atleast_1d(n_std))
    ax = _axes(ax)
    colors = _colors(len(means)) if colors is None else list(colors)
    for k, (mean, cov) in enumerate(zip(means, covs)):
        sub = cov[np.ix_((i, j), (i, j))]
        for level, sd in enumerate(n_std):
            width, height, angle = ellipse_geometry(sub, sd)
            ax.add_patch(Ellipse(
                (mean[i], mean[j]), width, height, angle=angle,
                # Faint fill, fainter further out; the edge stays opaque.
                facecolor=to_rgba(colors[k], 0.16 / (level + 1)) if fill else "none",
                edgecolor=to_rgba(colors[k]),
                linewidth=linewidth * (0.75 ** level),
                linestyle="-" if level == 0 else (0, (4, 2 + level)),
                zorder=1,
            ))
    if mark_means:
        ax.scatter(means[:, i], means[:, j], marker="X", s=90, c=colors[:len(means)],
                   edgecolors="black", linewidths=0.9, zorder=3)
    return ax


def mixture(model, X=None, *, labels=None, color_by="cluster", ax=None, dims=(0, 1),
            n_std=DEFAULT_N_STD, title=None, equal_aspect=None, feature_names=None):
    """The data, coloured by cluster or responsibility, under the component ellipses.

    Parameters
    ----------
    model : Mixture or fitted GaussianMixture
    X : array-like of shape (n, D), optional
    labels : array-like of shape (n,), optional
        Colour the data by these labels instead of the model's clusters.
    color_by : {"cluster", "responsibility", "none"}, default="cluster"
    ax : matplotlib Axes, optional
    dims : (int, int), default=(0, 1)
    n_std : sequence of float, default=(1, 2, 3)
    title : str, optional
    equal_aspect : bool, optional
        One unit the same length on both axes, so ellipses look as round as they
        are. Default: True when the two features span similar ranges.
    feature_names : sequence of str, optional
        Axis labels; default the model's ``feature_names_in_`` (fitted on a DataFrame),
        else X's columns if X is a DataFrame, else ``x0``, ``x1``, ...

    Returns
    -------
    ax : matplotlib Axes
    """
    _, means, _ = _parameters(model)
    ax = _axes(ax)
    if feature_names is None:  # the names the model or the data carry
        feature_names = getattr(model, "feature_names_in_", getattr(X, "columns", None))
    if X is not None:
        X = _check_X(X, means.shape[1])
        scatter(X, model, labels=labels, color_by=color_by, ax=ax, dims=dims)
    ellipses(model, ax=ax, dims=dims, n_std=n_std)
    i, j = _check_dims(dims, means.shape[1])
    names = _names(feature_names, means.shape[1])
    ax.set_xlabel(names[i])
    ax.set_ylabel(names[j])
    if equal_aspect is None and X is not None:
        spans = np.ptp(X[:, [i, j]], axis=0)
        equal_aspect = bool(spans.min() > 0 and spans.max() / spans.min() < 3)
    if equal_aspect:
        ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return ax


def log_likelihood(model, *, ax=None, zoom=None, **kwargs):
    """The log-likelihood over EM iterations.

    Parameters
    ----------
    model : Mixture, fitted GaussianMixture, or sequence of float
        A Mixture's ``log_likelihoods_`` (total, from step 0), an estimator's
        ``lower_bounds_`` (mean per row, from iteration 1), or the values themselves.
    ax : matplotlib Axes, optional
    zoom : bool, optional
        Add an inset of the steps after the first. Default: when the first step's
        gain dwarfs the rest, so that the later progress is visible.
    **kwargs
        Passed to ``Axes.plot``.

    Returns
    -------
    ax : matplotlib Axes
    """
    if isinstance(model, Mixture):
        values, first, label = model.log_likelihoods_, 0, "log-likelihood"
    elif hasattr(model, "lower_bounds_"):
        values, first, label = model.lower_bounds_, 1, "mean log-likelihood per row"
    elif hasattr(model, "means_"):
        raise ValueError(
            f"This {type(model).__name__} keeps no history (no lower_bounds_); pass "
            "the values, or a Mixture after fit."
        )
    else:
        values, first, label = model, 0, "log-likelihood"
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("No log-likelihoods to plot: fit the model first.")
    ax = _axes(ax, figsize=(6.0, 3.5))
    steps = np.arange(first, first + values.size)
    kwargs.setdefault("marker", "o" if values.size <= 30 else None)
    kwargs.setdefault("markersize", 3)
    kwargs.setdefault("color", "#1f77b4")
    ax.plot(steps, values, **kwargs)
    pad = max(0.02 * (steps[-1] - steps[0]), 0.5)
    ax.set_xlim(steps[0] - pad, steps[-1] + pad)
    ax.set_xlabel("EM step")
    ax.set_ylabel(label)
    ax.yaxis.get_major_formatter().set_useOffset(False)  # show the values themselves
    ax.grid(True, alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if zoom is None:
        # The first step often gains far more than all later ones together, which
        # flattens the rest of the curve: show the later steps in an inset.
        later = values[1:]
        zoom = bool(later.size >= 3 and np.ptp(later) > 0
                    and later[0] - values[0] > 5 * np.ptp(later))
    if zoom:
        # Zoom on the steps after the first, up to where the curve has flattened
        # (99.9% of the later gain), with some of the plateau for context.
        later = values[1:]
        gain = later.max() - later[0]
        flat = int(np.argmax(later >= later.max() - 1e-3 * gain)) if gain > 0 else 0
        end = min(later.size, max(int(flat * 1.5) + 2, 5))
        inset = ax.inset_axes([0.4, 0.14, 0.55, 0.5])
        inset.plot(steps[1:1 + end], later[:end], **kwargs)
        inset.set_title(f"steps {steps[1]} to {steps[end]}", fontsize=8)
        inset.tick_params(labelsize=7)
        inset.grid(True, alpha=0.3)
        inset.xaxis.set_major_locator(MaxNLocator(integer=True))
        inset.yaxis.get_major_formatter().set_useOffset(False)
    return ax


def _separated_features(model, n):
    """The ``n`` features (in their order) along which the components lie furthest
    apart: the variance of the means between components over the mean variance within
    them, each weighted by the mixture weights."""
    weights, means, covs = _parameters(model)
    centre = weights @ means
    between = weights @ (means - centre) ** 2
    within = weights @ np.diagonal(covs, axis1=1, axis2=2)
    ratio = between / np.maximum(within, np.finfo(float).tiny)
    return sorted(int(d) for d in np.argsort(-ratio, kind="stable")[:n])


def _limits(values, margin=0.08):
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = (hi - lo) * margin or 1.0
    return lo - pad, hi + pad


def pairs(model, X=None, *, labels=None, color_by="cluster", dims=None,
          n_std=DEFAULT_N_STD, fig=None, size=2.4, feature_names=None):
    """A grid of every pair of features with the projected ellipses.

    Panel (row r, column c) shows feature ``dims[c]`` across and ``dims[r]`` up; the
    diagonal shows a histogram of each feature with the mixture's marginal density
    and each component's weighted share of it.

    Parameters
    ----------
    model : Mixture or fitted GaussianMixture
    X : array-like of shape (n, D), optional
    labels : array-like of shape (n,), optional
    color_by : {"cluster", "responsibility", "none"}, default="cluster"
    dims : sequence of int, optional
        The features to show; default all. One feature gives its histogram under
        the fitted density.
    n_std : sequence of float, default=(1, 2, 3)
    fig : matplotlib Figure, optional
        Drawn into (cleared first); default a new one.
    size : float, default=2.4
        Inches per panel.
    feature_names : sequence of str, optional
        Axis labels; default ``x0``, ``x1``, ...

    Returns
    -------
    fig : matplotlib Figure
        ``fig.axes`` is the grid in row-major order.
    """
    weights, means, covs = _parameters(model)
    n_features = means.shape[1]
    dims = list(range(n_features)) if dims is None else [int(d) for d in dims]
    if len(dims) < 1 or len(set(dims)) != len(dims) or not all(
            0 <= d < n_features for d in dims):
        raise ValueError(
            f"dims must be different feature indices in [0, {n_features})."
        )
    if X is not None:
        X = _check_X(X, n_features)
        # One prediction for every panel.
        point_colors = _point_colors(X, model, labels, color_by)
    m = len(dims)
    names = _names(feature_names, n_features)
    if fig is None:
        fig = _new_figure(figsize=(size * m, size * m) if m > 1 else (6.0, 4.0))
    else:
        fig.clear()
    grid = fig.subplots(m, m, squeeze=False)
    colors = _colors(len(means))
    sds = np.sqrt(np.diagonal(covs, axis1=1, axis2=2))  # (K, D)
    limits = {}
    for d in dims:
        extent = np.concatenate([means[:, d] - 3 * sds[:, d], means[:, d] + 3 * sds[:, d]])
        limits[d] = _limits(X[:, d]) if X is not None else _limits(extent, 0.02)
    for r, dr in enumerate(dims):
        for c, dc in enumerate(dims):
            ax = grid[r, c]
            if r == c:
                grid_x = np.linspace(*limits[dc], 300)
                if X is not None:
                    ax.hist(X[:, dc], bins="auto", density=True, color="0.85",
                            edgecolor="white")
                total = np.zeros_like(grid_x)
                for k in range(len(means)):
                    share = weights[k] * np.exp(
                        -0.5 * ((grid_x - means[k, dc]) / sds[k, dc]) ** 2
                    ) / (sds[k, dc] * np.sqrt(2 * np.pi))
                    total += share
                    ax.plot(grid_x, share, color=colors[k], linewidth=1.2)
                ax.plot(grid_x, total, color="black", linewidth=1.0, linestyle="--")
                ax.set_yticks([])
            else:
                if X is not None:
                    _draw_points(ax, X, point_colors, dc, dr, s=8, linewidths=0.2)
                ellipses(model, ax=ax, dims=(dc, dr), n_std=n_std, linewidth=1.0)
                ax.set_ylim(*limits[dr])
            ax.set_xlim(*limits[dc])
            if r == m - 1:
                ax.set_xlabel(names[dc])
            else:
                ax.tick_params(labelbottom=False)
            if c == 0 and r != c:
                ax.set_ylabel(names[dr])
            elif r == 0 and c == m - 1 and m > 1:
                # Row 0 starts with a histogram: label its feature on the right.
                ax.yaxis.tick_right()
                ax.yaxis.set_label_position("right")
                ax.set_ylabel(names[dr])
            elif r != c:
                ax.tick_params(labelleft=False)
    fig.tight_layout()
    return fig


def _frame(ax, model, X, labels, color_by, n_std, xlim, ylim, title):
    scatter(X, model, labels=labels, color_by=color_by, ax=ax, s=10, linewidths=0.2)
    ellipses(model, ax=ax, n_std=n_std, linewidth=1.2)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal", adjustable="box")
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=7)


def _frame_limits(X, snapshots, n_std=3.0):
    """Square limits that hold the data and every frame's means and n_std-sd boxes."""
    points = [X[:, :2]]
    for snapshot in snapshots:
        _, means, covs = _parameters(snapshot)
        sds = np.sqrt(np.diagonal(covs, axis1=1, axis2=2)[:, :2])
        points += [means[:, :2] - n_std * sds, means[:, :2] + n_std * sds]
    points = np.concatenate(points)
    (x0, x1), (y0, y1) = _limits(points[:, 0], 0.03), _limits(points[:, 1], 0.03)
    half = max(x1 - x0, y1 - y0) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (cx - half, cx + half), (cy - half, cy + half)


def progress(snapshots, X, *, steps=None, labels=None, color_by="responsibility",
             ncols=4, n_std=DEFAULT_N_STD, size=2.6, fig=None):
    """A grid of frames of EM's progress: the data under each snapshot's ellipses.

    Parameters
    ----------
    snapshots : sequence of models
        Mixtures (e.g. ``copy.deepcopy(mixture)`` taken in a ``fit`` callback),
        estimators or ``(weights, means, covariances)`` tuples, in order.
    X : array-like of shape (n, 2)
        The data (the first two features are shown).
    steps : sequence of int, optional
        The EM step of each snapshot, for the titles.
    labels : array-like of shape (n,), optional
        Colour the data by these fixed labels instead.
    color_by : {"responsibility", "cluster", "none"}, default="responsibility"
        Colour the data in each frame by that snapshot's responsibilities (so the
        E-step shows as well as the M-step), its clusters, or not at all.
    ncols : int, default=4
    n_std : sequence of float, default=(1, 2, 3)
    size : float, default=2.6
        Inches per frame.
    fig : matplotlib Figure, optional

    Returns
    -------
    fig : matplotlib Figure
    """
    X = _check_X(X)
    snapshots = list(snapshots)
    if not snapshots:
        raise ValueError("No snapshots to draw.")
    steps = list(range(len(snapshots))) if steps is None else list(steps)
    ncols = max(1, min(int(ncols), len(snapshots)))
    nrows = -(-len(snapshots) // ncols)
    if fig is None:
        fig = _new_figure(figsize=(size * ncols, size * nrows + 0.3))
    else:
        fig.clear()
    grid = fig.subplots(nrows, ncols, squeeze=False)
    # Frame on the data and the first and last snapshots; a wide intermediate
    # ellipse may leave the frame rather than shrink everything else.
    xlim, ylim = _frame_limits(X, [snapshots[0], snapshots[-1]])
    for index, ax in enumerate(grid.flat):
        if index >= len(snapshots):
            ax.set_visible(False)
            continue
        _frame(ax, snapshots[index], X, labels, color_by, n_std, xlim, ylim,
               f"step {steps[index]}")
    fig.tight_layout()
    return fig


def animate(snapshots, X, path, *, steps=None, labels=None, color_by="responsibility",
            fps=6, n_std=DEFAULT_N_STD, size=4.5, dpi=80, hold_last=8):
    """Write EM's progress as an animated GIF (needs pillow, a matplotlib dependency).

    Parameters
    ----------
    snapshots, X, steps, labels, color_by, n_std :
        As for :func:`progress`.
    path : str or path-like
        The GIF to write.
    fps : int, default=6
    size : float, default=4.5
        Inches (square).
    dpi : int, default=80
    hold_last : int, default=8
        Extra copies of the last frame, so the result stays on screen a moment.

    Returns
    -------
    path : str
    """
    from matplotlib.animation import PillowWriter

    X = _check_X(X)
    snapshots = list(snapshots)
    if not snapshots:
        raise ValueError("No snapshots to animate.")
    steps = list(range(len(snapshots))) if steps is None else list(steps)
    fig = _new_figure(figsize=(size, size), managed=False)
    ax = fig.add_subplot()
    xlim, ylim = _frame_limits(X, [snapshots[0], snapshots[-1]])
    writer = PillowWriter(fps=fps)
    with writer.saving(fig, str(path), dpi=dpi):
        for index, snapshot in enumerate(snapshots):
            ax.clear()
            _frame(ax, snapshot, X, labels, color_by, n_std, xlim, ylim,
                   f"EM step {steps[index]}")
            if index == 0:  # fixed limits: one layout serves every frame
                fig.tight_layout()
                fig.set_layout_engine("none")
            writer.grab_frame()
        for _ in range(hold_last):
            writer.grab_frame()
    return str(path)
