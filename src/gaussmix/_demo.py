"""``gaussmix demo``: the classic EM experiment, with pictures.

Blobs from ``make_blobs``; a :class:`~gaussmix.Mixture` of Gaussians started at random
(means ``randn(2) * 4``, identity covariances, equal weights); EM for a fixed number of
steps. Writes the data, the start, the fit and EM's progress as PNG files (and an
animated GIF), and prints the fitted mixture and its log-likelihood.

The command line is wired elsewhere (``gaussmix.cli``); this module gives it
:func:`add_arguments` and :func:`run`.
"""

from __future__ import annotations

import argparse
import os
import warnings

from .cli import _error, _non_negative_int, _positive_int, _seed

DEFAULT_SEED = 31
DEFAULT_OUT = "gaussmix-demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options to ``parser``."""
    parser.add_argument(
        "--seed", type=_seed, default=DEFAULT_SEED,
        help="random seed for the data and the random start (default: %(default)s)",
    )
    parser.add_argument(
        "--n-samples", type=_positive_int, default=100, metavar="N",
        help="number of data points (default: %(default)s)",
    )
    parser.add_argument(
        "--components", type=_positive_int, default=3, metavar="K",
        help="clusters in the data and Gaussians in the mixture (default: %(default)s)",
    )
    parser.add_argument(
        "--steps", type=_non_negative_int, default=100,
        help="EM steps to run (default: %(default)s)",
    )
    parser.add_argument(
        "--out", default=DEFAULT_OUT, metavar="DIR",
        help="folder for the pictures, created if needed (default: %(default)s)",
    )


def _settled_step(log_likelihoods, n_rows: int, tol: float = 1e-4) -> int:
    """The first step after which the mean log-likelihood moves by less than tol."""
    for step in range(1, len(log_likelihoods)):
        if abs(log_likelihoods[step] - log_likelihoods[step - 1]) / n_rows < tol:
            return step
    return len(log_likelihoods) - 1


def _progress_steps(n_steps: int, settled: int, n_frames: int = 8) -> list[int]:
    """Steps for the frame grid: spread (densest early) over the steps where EM still
    moves, then the last step."""
    settled = min(max(settled, 1), n_steps)
    n_early = n_frames - 1 if settled < n_steps else n_frames
    if settled + 1 <= n_early:
        steps = list(range(settled + 1))
    else:
        import numpy as np  # here, not at the top: the command's --help stays fast

        inner = np.geomspace(1, settled, n_early - 1)
        steps = sorted({0, settled, *(int(round(s)) for s in inner)})
        candidate = 1
        while len(steps) < n_early:  # rounding merged some: fill the early gaps
            if candidate not in steps:
                steps = sorted(steps + [candidate])
            candidate += 1
    if steps[-1] != n_steps:
        steps.append(n_steps)
    return steps


def _animation_steps(n_steps: int, settled: int, max_frames: int = 40) -> list[int]:
    """Every step while EM moves (and a few more), then the last step; at most
    ``max_frames``, every step early on and evenly spaced after."""
    moving = min(settled + 5, n_steps)
    if moving + 1 <= max_frames - 1:
        steps = list(range(moving + 1))
    else:
        import numpy as np

        early = list(range(20))
        late = np.linspace(20, moving, max_frames - 1 - len(early))
        steps = sorted(set(early) | {int(round(s)) for s in late})
    if steps[-1] != n_steps:
        steps.append(n_steps)
    return steps


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _save(fig, path, outputs, description):
    fig.savefig(path, dpi=110)
    outputs.append((path, description))


def run(args: argparse.Namespace) -> int:
    """Run the demo with parsed options; returns the exit status."""
    import numpy as np
    from sklearn.datasets import make_blobs
    from sklearn.metrics import adjusted_rand_score

    from . import plot
    from ._mixture import Gauss, Mixture
    from .plot import _new_figure

    n_components, n_samples = args.components, args.n_samples
    if n_samples < n_components:
        # A user error like any other (exit status 1); 2 is argparse's alone.
        _error(f"demo: --n-samples ({n_samples}) must be at least "
               f"--components ({n_components})")
        return 1
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as error:
        _error(f"demo: cannot create {args.out!r}: {error}")
        return 1

    X, y = make_blobs(n_samples=n_samples, centers=n_components, random_state=args.seed)
    rng = np.random.default_rng(args.seed)
    mixture = Mixture(
        Gauss(rng.standard_normal(2) * 4, np.eye(2), 1 / n_components)
        for _ in range(n_components)
    )
    snapshots = []  # the parameters after each step, from step 0 (the start)

    def keep(step, m):
        snapshots.append((m.weights, m.means, m.covariances))

    print(
        f"gaussmix demo: {_plural(n_samples, 'point')} from "
        f"{_plural(n_components, 'cluster')} (seed {args.seed}); "
        f"{_plural(n_components, 'Gaussian')} started at random; "
        f"{_plural(args.steps, 'EM step')}."
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mixture.fit(X, n_steps=args.steps, callback=keep)
    for message in {str(w.message) for w in caught}:
        print(f"note: {message}")

    log_likelihood = mixture.log_likelihoods_[-1]
    predicted = mixture.predict(X)
    agreement = adjusted_rand_score(y, predicted)
    print()
    print("Fitted mixture:")
    print(mixture)
    print()
    print(f"log-likelihood: {log_likelihood:.2f} "
          f"(mean per point {log_likelihood / n_samples:.4f}; at the start "
          f"{mixture.log_likelihoods_[0]:.2f})")
    print(f"agreement with the true clusters: adjusted Rand index {agreement:.2f}")
    settled = _settled_step(mixture.log_likelihoods_, n_samples)
    if agreement < 0.9 and settled == args.steps:
        print(f"EM is still moving after {_plural(args.steps, 'step')}: try more --steps.")
    elif agreement < 0.9:
        print(
            "The fit does not match the true clusters: EM, which only ever goes uphill, "
            "stopped at a local optimum from this random start, or the clusters "
            "overlap. Try another --seed, or GaussianMixture's k-means start."
        )

    outputs: list[tuple[str, str]] = []
    start = snapshots[0]
    frame_limits = plot._frame_limits(X, [start, snapshots[-1]])
    # Colour each true cluster as the component that found it, so pictures 1 and 3
    # can be compared at a glance.
    from scipy.optimize import linear_sum_assignment

    counts = np.zeros((n_components, n_components))
    np.add.at(counts, (y, predicted), 1)
    _, component_of = linear_sum_assignment(-counts)

    def picture(model, title, labels=None, color_by="cluster"):
        fig = _new_figure(figsize=(5.6, 5.2), managed=False)
        ax = fig.add_subplot()
        if model is None:
            plot.scatter(X, labels=labels, ax=ax)
        else:
            plot.mixture(model, X, labels=labels, color_by=color_by, ax=ax)
        ax.set_xlim(*frame_limits[0])
        ax.set_ylim(*frame_limits[1])
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel("x0")
        ax.set_ylabel("x1")
        ax.set_title(title)
        fig.tight_layout()
        return fig

    out = args.out
    _save(picture(None, f"The data: {n_samples} points, {n_components} true clusters",
                  labels=component_of[y]),
          os.path.join(out, "1-data.png"), outputs, "the data, coloured by true cluster")
    _save(picture(start, "Start: Gaussians placed at random", color_by="responsibility"),
          os.path.join(out, "2-initial.png"), outputs,
          "the initial Gaussians (1, 2, 3 sd) over the data, coloured by "
          "responsibility")
    _save(picture(mixture, f"After {args.steps} EM steps", color_by="responsibility"),
          os.path.join(out, "3-fitted.png"), outputs,
          "the fitted Gaussians over the data, coloured by responsibility")

    shown = _progress_steps(args.steps, settled)
    n_rows = -(-len(shown) // 4)
    fig = plot.progress([snapshots[s] for s in shown], X, steps=shown, ncols=4,
                        fig=_new_figure(figsize=(2.6 * 4, 2.6 * n_rows + 0.3),
                                        managed=False))
    _save(fig, os.path.join(out, "4-progress.png"), outputs,
          "EM's progress, frame by frame")

    fig = _new_figure(figsize=(6.0, 3.6), managed=False)
    ax = plot.log_likelihood(mixture, ax=fig.add_subplot())
    ax.set_title("Log-likelihood of the data over EM steps")
    fig.tight_layout()
    _save(fig, os.path.join(out, "5-log-likelihood.png"), outputs,
          "the log-likelihood over EM steps")

    try:
        import PIL  # noqa: F401  (matplotlib depends on pillow; be safe anyway)
    except ImportError:  # pragma: no cover
        pass
    else:
        frames = _animation_steps(args.steps, settled)
        path = plot.animate([snapshots[s] for s in frames], X,
                            os.path.join(out, "6-em.gif"), steps=frames)
        outputs.append((path, "EM's progress, animated"))

    print()
    print("Wrote:")
    width = max(len(path) for path, _ in outputs)
    for path, description in outputs:
        print(f"  {path:<{width}}  {description}")
    return 0
