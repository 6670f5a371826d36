"""gaussmix.plot: ellipse geometry checked numerically, figures written to files."""

import os
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse
from sklearn.datasets import make_blobs
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import gaussmix
from gaussmix import Gauss, GaussianMixture, Mixture, plot


@pytest.fixture(scope="module")
def blobs3d():
    X, y = make_blobs(n_samples=120, centers=3, n_features=3, random_state=4)
    return X, y


@pytest.fixture(autouse=True)
def close_pyplot_figures():
    """Figures made without ax= belong to pyplot once anything imported it."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def new_ax():
    return Figure().add_subplot()


def mahalanobis_of_boundary(patch, mean, cov):
    """Mahalanobis distance of the points on the drawn ellipse's outline (the end
    points of its Bezier segments; control points lie off the curve)."""
    path = patch.get_path().transformed(patch.get_patch_transform())
    on_curve = np.array([vertices[-2:] for vertices, code in path.iter_segments()
                         if code != path.CLOSEPOLY])
    assert len(on_curve) >= 8
    diff = on_curve - mean
    return np.sqrt(np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff))


def eigen_geometry(cov, n_std):
    values, vectors = np.linalg.eigh(cov)
    angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
    return 2 * n_std * np.sqrt(values[1]), 2 * n_std * np.sqrt(values[0]), angle


def same_axis(angle_a, angle_b):
    """Angles of an ellipse's axis are equal modulo 180 degrees."""
    return np.isclose((angle_a - angle_b + 90) % 180 - 90, 0, atol=1e-7)


@pytest.mark.parametrize("seed", range(5))
def test_ellipse_geometry_from_the_eigendecomposition(seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((2, 2))
    cov = a @ a.T + 0.1 * np.eye(2)
    for n_std in (1, 2, 3):
        width, height, angle = plot.ellipse_geometry(cov, n_std)
        ref_w, ref_h, ref_angle = eigen_geometry(cov, n_std)
        assert width == pytest.approx(ref_w) and height == pytest.approx(ref_h)
        assert width >= height and -90 < angle <= 90
        assert same_axis(angle, ref_angle)
        # The drawn outline is exactly n_std Mahalanobis units from the mean.
        patch = Ellipse((1.0, -2.0), width, height, angle=angle)
        np.testing.assert_allclose(
            mahalanobis_of_boundary(patch, [1.0, -2.0], cov), n_std, rtol=1e-9)


def test_ellipse_geometry_axis_aligned():
    assert plot.ellipse_geometry(np.diag([4.0, 1.0]), 2) == pytest.approx((8.0, 4.0, 0.0))
    width, height, angle = plot.ellipse_geometry(np.diag([1.0, 9.0]), 1)
    assert (width, height) == pytest.approx((6.0, 2.0)) and abs(angle) == pytest.approx(90)


def test_ellipses_of_a_mixture():
    mixture = Mixture([Gauss([0, 0], [[2.0, 0.6], [0.6, 1.0]], 0.5),
                       Gauss([5, 1], [[0.5, -0.2], [-0.2, 1.5]], 0.5)])
    ax = plot.ellipses(mixture, ax=new_ax())
    patches = [p for p in ax.patches if isinstance(p, Ellipse)]
    assert len(patches) == 2 * 3
    for k, g in enumerate(mixture):
        for level, n_std in enumerate((1, 2, 3)):
            patch = patches[3 * k + level]
            np.testing.assert_allclose(patch.center, g.mu)
            ref_w, ref_h, ref_angle = eigen_geometry(g.cov, n_std)
            assert patch.width == pytest.approx(ref_w)
            assert patch.height == pytest.approx(ref_h)
            assert same_axis(patch.angle, ref_angle)
    means = ax.collections[-1].get_offsets()  # the means are marked
    np.testing.assert_allclose(means, mixture.means)


def test_projected_ellipses_use_the_sub_block(blobs3d):
    X, _ = blobs3d
    gm = SkGaussianMixture(3, random_state=0).fit(X)
    ax = plot.ellipses(gm, ax=new_ax(), dims=(2, 0), n_std=[2])
    for k, patch in enumerate(ax.patches):
        sub = gm.covariances_[k][np.ix_([2, 0], [2, 0])]
        np.testing.assert_allclose(patch.center, gm.means_[k, [2, 0]])
        np.testing.assert_allclose(
            mahalanobis_of_boundary(patch, gm.means_[k, [2, 0]], sub), 2.0, rtol=1e-9)


def full_covariance(gm, k):
    """Component k's covariance matrix, written out from scikit-learn's layouts."""
    cov = np.asarray(gm.covariances_)
    d = gm.means_.shape[1]
    return {"full": lambda: cov[k], "tied": lambda: cov,
            "diag": lambda: np.diag(cov[k]),
            "spherical": lambda: cov[k] * np.eye(d)}[gm.covariance_type]()


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_any_estimator_and_covariance_type(covariance_type):
    X, _ = make_blobs(n_samples=90, centers=3, random_state=1)
    for cls in (SkGaussianMixture, GaussianMixture):
        gm = cls(3, covariance_type=covariance_type, random_state=0).fit(X)
        ax = plot.mixture(gm, X, ax=new_ax())
        patches = ax.patches
        assert len(patches) == 9
        for k in range(3):
            patch = patches[3 * k]  # 1 sd
            np.testing.assert_allclose(
                mahalanobis_of_boundary(patch, gm.means_[k], full_covariance(gm, k)),
                1.0, rtol=1e-9)
            if covariance_type == "spherical":
                assert patch.width == pytest.approx(patch.height)
            if covariance_type == "diag":
                assert patch.angle % 90 == pytest.approx(0, abs=1e-9)


def test_scatter_colours_by_cluster_and_by_responsibility():
    X, y = make_blobs(n_samples=60, centers=2, random_state=3)
    mixture = Mixture([Gauss(X[y == k].mean(axis=0), np.cov(X[y == k].T), 0.5)
                       for k in range(2)])
    palette = np.array(plot._colors(2))
    ax = plot.scatter(X, mixture, ax=new_ax())
    np.testing.assert_allclose(ax.collections[0].get_offsets(), X)
    np.testing.assert_allclose(ax.collections[0].get_facecolors(),
                               palette[mixture.predict(X)])
    ax = plot.scatter(X, mixture, color_by="responsibility", ax=new_ax())
    expected = np.clip(mixture.predict_proba(X) @ palette, 0, 1)
    np.testing.assert_allclose(ax.collections[0].get_facecolors(), expected)
    ax = plot.scatter(X, labels=np.where(y == 0, "a", "b"), ax=new_ax())
    np.testing.assert_allclose(ax.collections[0].get_facecolors(), palette[y])
    with pytest.raises(ValueError, match="color_by"):
        plot.scatter(X, mixture, color_by="nonsense", ax=new_ax())


def test_log_likelihood_curves():
    X, _ = make_blobs(n_samples=80, centers=3, random_state=2)
    rng = np.random.default_rng(0)
    mixture = Mixture(Gauss(X[i], np.eye(2), 1 / 3) for i in rng.choice(80, 3))
    mixture.fit(X, n_steps=20)
    ax = plot.log_likelihood(mixture, ax=new_ax(), zoom=False)
    x, values = ax.lines[0].get_data()
    np.testing.assert_array_equal(x, np.arange(21))
    np.testing.assert_allclose(values, mixture.log_likelihoods_)
    gm = GaussianMixture(3, random_state=0).fit(X)
    x, values = plot.log_likelihood(gm, ax=new_ax()).lines[0].get_data()
    np.testing.assert_array_equal(x, np.arange(1, gm.n_iter_ + 1))
    np.testing.assert_allclose(values, gm.lower_bounds_)
    no_history = SkGaussianMixture(3, random_state=0).fit(X)
    no_history.__dict__.pop("lower_bounds_", None)  # older scikit-learn has none
    with pytest.raises(ValueError, match="history"):
        plot.log_likelihood(no_history)


def test_log_likelihood_zooms_when_the_first_step_dwarfs_the_rest():
    values = [-5000.0, -400.0, -395.0, -390.0, -389.0, -389.0]
    ax = plot.log_likelihood(values, ax=new_ax())
    assert len(ax.child_axes) == 1
    np.testing.assert_allclose(ax.child_axes[0].lines[0].get_ydata(), values[1:])


def test_pairs_grid(blobs3d, tmp_path):
    X, _ = blobs3d
    gm = GaussianMixture(3, random_state=0).fit(X)
    fig = plot.pairs(gm, X, feature_names=["a", "b", "c"])
    assert len(fig.axes) == 9
    for r in range(3):
        for c in range(3):
            ax = fig.axes[3 * r + c]
            if r == c:
                assert not ax.patches or all(not isinstance(p, Ellipse) for p in ax.patches)
                continue
            ellipses = [p for p in ax.patches if isinstance(p, Ellipse)]
            assert len(ellipses) == 9
            for k in range(3):
                sub = gm.covariances_[k][np.ix_([c, r], [c, r])]
                np.testing.assert_allclose(
                    mahalanobis_of_boundary(ellipses[3 * k + 2], gm.means_[k, [c, r]], sub),
                    3.0, rtol=1e-9)
    assert fig.axes[6].get_xlabel() == "a" and fig.axes[3].get_ylabel() == "b"
    # The diagonal's dashed curve is the mixture's marginal density: it integrates to 1.
    x, density = fig.axes[0].lines[-1].get_data()
    area = np.sum((density[1:] + density[:-1]) / 2 * np.diff(x))
    assert area == pytest.approx(1.0, abs=0.02)
    path = tmp_path / "pairs.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_and_animation_files(tmp_path):
    from PIL import Image

    X, y = make_blobs(n_samples=50, centers=2, random_state=0)
    mixture = Mixture([Gauss(X[0], np.eye(2), 0.5), Gauss(X[1], np.eye(2), 0.5)])
    snapshots = []
    mixture.fit(X, n_steps=4, callback=lambda step, m: snapshots.append(
        (m.weights, m.means, m.covariances)))
    assert len(snapshots) == 5
    fig = plot.progress(snapshots, X, ncols=3)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 5 and visible[2].get_title() == "step 2"
    assert len(fig.axes) == 6  # the sixth cell of the 2 x 3 grid is hidden
    fig.savefig(tmp_path / "progress.png")
    gif = plot.animate(snapshots, X, tmp_path / "em.gif", hold_last=2)
    with Image.open(gif) as image:
        # Pillow merges the repeated last frame into one longer frame.
        assert image.format == "GIF" and image.n_frames == len(snapshots)
        first = image.info["duration"]
        image.seek(image.n_frames - 1)
        assert image.info["duration"] > 2 * first


def test_bad_input():
    mixture = Mixture([Gauss([0, 0]), Gauss([1, 1])])
    with pytest.raises(ValueError, match="dims"):
        plot.ellipses(mixture, ax=new_ax(), dims=(0, 0))
    with pytest.raises(TypeError, match="Mixture"):
        plot.ellipses("model", ax=new_ax())
    with pytest.raises(ValueError, match="fit"):
        plot.ellipses(SkGaussianMixture(2), ax=new_ax())
    with pytest.raises(ValueError, match="features"):
        plot.mixture(mixture, np.zeros((3, 3)), ax=new_ax())


def test_headless_without_pyplot(tmp_path):
    """Importing gaussmix loads no matplotlib; plotting without pyplot uses a bare
    Agg figure, opens no window and never imports pyplot."""
    code = (
        "import sys, numpy as np, gaussmix\n"
        "assert 'matplotlib' not in sys.modules, 'import gaussmix loaded matplotlib'\n"
        "m = gaussmix.Mixture([gaussmix.Gauss([0, 0]), gaussmix.Gauss([3, 0])])\n"
        "ax = gaussmix.plot.mixture(m, np.random.default_rng(0).normal(size=(20, 2)))\n"
        f"ax.figure.savefig({str(tmp_path / 'h.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    assert (tmp_path / "h.png").stat().st_size > 1000


def test_with_pyplot_figures_belong_to_pyplot():
    import matplotlib.pyplot as plt

    ax = plot.mixture(Mixture([Gauss([0, 0])]))
    try:
        assert plt.fignum_exists(ax.figure.number)  # plt.show() would display it
    finally:
        plt.close(ax.figure)


def test_public_surface():
    assert gaussmix.plot is plot
    for name in ("Gauss", "Mixture", "plot"):
        assert name in gaussmix.__all__
