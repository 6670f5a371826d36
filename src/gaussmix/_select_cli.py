"""``gaussmix select DATA``: mclust-style model selection from the command line.

Reads DATA as ``gaussmix fit`` does (:mod:`gaussmix._files.data`: CSV, TSV, Parquet or
``.npy``, with ``--columns``, ``--header`` and ``--format``), fits the grid of numbers of
components and covariance models, and prints the BIC table (optionally the ICL table) and
the best model's summary.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_arguments", "run", "parse_G"]


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


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``gaussmix select``'s arguments to ``parser``."""
    from .cli import _add_data_arguments

    _add_data_arguments(parser)  # DATA, --columns, --header, --format: as for fit
    parser.add_argument("-G", "--G", dest="G", type=_G_type, default=None,
                        help="numbers of components, e.g. 1:9 (default), 2-5 or 2,3,4")
    parser.add_argument("-m", "--models", default=None,
                        help="comma-separated mclust models (default: all 14; E,V in 1-D)")
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
    from ._files.data import DataError
    from ._mclust.select import select
    from .cli import _read_table

    try:
        # A DataFrame when the file has column names: select keeps them for its plots.
        X = _read_table(args).frame()
    except (DataError, OSError) as exc:
        # 2, not fit's 1: select's status for unreadable input since it was written.
        message = " ".join(str(exc).split())
        print(f"gaussmix: error: cannot read data: {message}", file=sys.stderr)
        return 2
    models = [m.strip() for m in args.models.split(",")] if args.models else None
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
