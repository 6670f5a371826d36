"""``gaussmix select DATA``: mclust-style model selection from the command line.

Reads a CSV (pandas; numeric columns), Parquet (pyarrow) or NumPy ``.npy`` file
(``allow_pickle=False``), fits the grid of numbers of components and covariance models,
and prints the BIC table (optionally the ICL table) and the best model's summary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

__all__ = ["add_arguments", "run", "read_data", "parse_G"]


def parse_G(text: str) -> list[int]:
    """Numbers of components from ``"1:9"``, ``"1-9"``, ``"2,3,5"`` or ``"4"``."""
    values: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        sep = ":" if ":" in part else ("-" if "-" in part[1:] else None)
        if sep is None:
            values.append(int(part))
        else:
            lo, hi = part.split(sep, 1)
            lo_i, hi_i = int(lo), int(hi)
            if hi_i < lo_i:
                raise ValueError(f"empty range {part!r}")
            values.extend(range(lo_i, hi_i + 1))
    if not values:
        raise ValueError(f"no number of components in {text!r}")
    return sorted(set(values))


def _G_type(text):
    try:
        return parse_G(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"invalid G {text!r} ({exc}); use e.g. 1:9, 2-5 or 2,3,4"
        ) from None


def read_data(path, columns=None):
    """The numeric data in ``path`` as (array, column names or None).

    Parameters
    ----------
    path : str or Path
        ``.csv`` / ``.txt`` / ``.tsv`` (pandas), ``.parquet`` / ``.pq`` (pyarrow) or
        ``.npy`` (NumPy, no pickles).
    columns : list of str, optional
        Columns to keep (tables only); default every numeric column.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        X = np.load(path, allow_pickle=False)
        if columns:
            raise ValueError("--columns applies to tables (CSV, Parquet), not .npy")
        return np.asarray(X, dtype=np.float64), None
    import pandas as pd

    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        frame = pq.read_table(path, columns=columns or None).to_pandas()
    else:
        sep = "\t" if suffix == ".tsv" else None
        frame = pd.read_csv(path, sep=sep, engine="python" if sep is None else "c")
    if columns:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"no column(s) {', '.join(missing)} in {path}")
        frame = frame[list(columns)]
    numeric = frame.select_dtypes(include="number")
    if numeric.shape[1] == 0:
        raise ValueError(f"no numeric column in {path}")
    if columns is None and numeric.shape[1] < frame.shape[1]:
        dropped = [str(c) for c in frame.columns if c not in numeric.columns]
        print(f"gaussmix select: ignoring non-numeric column(s) {', '.join(dropped)}",
              file=sys.stderr)
    elif numeric.shape[1] < frame.shape[1]:
        bad = [str(c) for c in frame.columns if c not in numeric.columns]
        raise ValueError(f"column(s) {', '.join(bad)} are not numeric")
    values = numeric.to_numpy(dtype=np.float64)
    if values.shape[0] == 0:
        raise ValueError(f"no data rows in {path}")
    return values, [str(c) for c in numeric.columns]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``gaussmix select``'s arguments to ``parser``."""
    parser.add_argument("data", metavar="DATA",
                        help="CSV, Parquet or .npy file of rows (numeric columns are used)")
    parser.add_argument("-G", "--G", dest="G", type=_G_type, default=None,
                        help="numbers of components, e.g. 1:9 (default), 2-5 or 2,3,4")
    parser.add_argument("-m", "--models", default=None,
                        help="comma-separated mclust models (default: all 14; E,V in 1-D)")
    parser.add_argument("--columns", action="append", metavar="COLS", default=None,
                        help="columns to use, comma-separated (or repeat the option); "
                             "default: every numeric column")
    parser.add_argument("--icl", action="store_true", help="also print the ICL table")
    parser.add_argument("--tol", type=float, default=1e-5,
                        help="relative log-likelihood change that stops EM (default 1e-5)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed for the 2000-row initialisation subset of large data")
    parser.add_argument("--plot", metavar="FILE", default=None,
                        help="save the BIC plot to FILE (png, pdf, svg)")
    parser.add_argument("--digits", type=int, default=4,
                        help="decimals in the printed tables (default 4)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print the best model only")
    return parser


def _format_table(frame, digits):
    return frame.to_string(float_format=lambda v: f"{v:.{digits}f}", na_rep="NA")


def run(args) -> int:
    """Run ``gaussmix select`` with parsed ``args``; returns the exit status."""
    from ._mclust.select import select

    try:
        columns = ([c.strip() for spec in args.columns for c in spec.split(",") if c.strip()]
                   if args.columns else None)
        X, names = read_data(args.data, columns)
    except (OSError, ValueError) as exc:
        print(f"gaussmix: error: cannot read {args.data}: {exc}", file=sys.stderr)
        return 2
    models = [m.strip() for m in args.models.split(",")] if args.models else None
    if names is not None:
        import pandas as pd

        X = pd.DataFrame(X, columns=names)
    try:
        result = select(X, G=args.G, models=models, tol=args.tol, random_state=args.seed)
    except (ValueError, RuntimeError) as exc:
        print(f"gaussmix: error: {exc}", file=sys.stderr)
        return 1
    if args.quiet:
        print(f"{result.best_model},{result.best_G} BIC={result.bic_value:.{args.digits}f}")
    else:
        print("Bayesian Information Criterion (BIC):")
        print(_format_table(result.bic, args.digits))
        if args.icl:
            print()
            print("Integrated Complete-data Likelihood (ICL):")
            print(_format_table(result.icl, args.digits))
        print()
        print(result.summary())
    if args.plot:
        fig = result.plot_bic()
        fig.savefig(args.plot, bbox_inches="tight")
        if not args.quiet:
            print(f"\nBIC plot written to {args.plot}")
    return 0


def main(argv=None) -> int:
    """Stand-alone entry point (``python -m gaussmix._select_cli DATA``)."""
    parser = add_arguments(argparse.ArgumentParser(
        prog="gaussmix select", description=__doc__.splitlines()[0]))
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
