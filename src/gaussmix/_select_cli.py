"""``gaussmix select DATA``: mclust-style model selection from the command line.

Reads DATA as ``gaussmix fit`` does (:mod:`gaussmix._files.data`: CSV, TSV, Parquet or
``.npy``, with ``--columns``, ``--header`` and ``--format``; streamed when it exceeds the
memory budget or with ``--streaming``), fits the grid of numbers of components and
covariance models, and prints the BIC table (optionally the ICL table) and the best
model's summary.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_arguments", "run", "parse_G"]


MAX_G = 100_000  # a bound on the numbers of components, checked before any range is built


def parse_G(text: str) -> list[int]:
    """Numbers of components from ``"1:9"``, ``"1-9"``, ``"2,3,5"`` or ``"4"``.

    Each number must be in ``[1, MAX_G]`` (a ``ValueError`` says which is not).
    """
    values: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        sep = ":" if ":" in part else ("-" if "-" in part[1:] else None)
        if sep is None:
            lo_i = hi_i = int(part)
        else:
            lo, hi = part.split(sep, 1)
            lo_i, hi_i = int(lo), int(hi)
            if hi_i < lo_i:
                raise ValueError(f"empty range {part!r}")
        if lo_i < 1 or hi_i > MAX_G:
            raise ValueError(f"{part!r}: numbers of components go from 1 to {MAX_G}")
        values.update(range(lo_i, hi_i + 1))
    if not values:
        raise ValueError(f"no number of components in {text!r}")
    return sorted(values)


def _G_type(text):
    try:
        return parse_G(text)
    except ValueError as exc:
        shown = text if len(text) <= 30 else text[:20] + "..."
        raise argparse.ArgumentTypeError(
            f"invalid G {shown!r} ({_short(exc)}); use e.g. 1:9, 2-5 or 2,3,4"
        ) from None


def _short(exc) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 80 else text[:60] + "..."


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``gaussmix select``'s arguments to ``parser``."""
    from .cli import (_add_data_arguments, _add_streaming_arguments, _non_negative_float,
                      _seed, _whole_number)

    _add_data_arguments(parser, exclude=True)  # DATA, --columns, --exclude ...: as fit
    _add_streaming_arguments(parser)  # --in-memory / --streaming, --progress
    parser.add_argument("-G", "--G", dest="G", type=_G_type, default=None,
                        help="numbers of components, e.g. 1:9 (default), 2-5 or 2,3,4")
    parser.add_argument("-m", "--models", default=None,
                        help="comma-separated mclust models (default: all 14; E,V in 1-D)")
    parser.add_argument("--icl", action="store_true", help="also print the ICL table")
    parser.add_argument("--tol", type=_non_negative_float, default=1e-5,
                        help="relative log-likelihood change that stops EM (default 1e-5)")
    parser.add_argument("--seed", type=_seed, default=None,
                        help="seed for the 2000-row initialisation subset of large data")
    parser.add_argument("--out", metavar="MODEL", default=None,
                        help="write the chosen model to this model file, for predict, "
                             "score, sample and plot (as 'gaussmix fit --out')")
    parser.add_argument("--plot", metavar="FILE", default=None,
                        help="save the BIC plot to FILE (png, pdf, svg)")
    parser.add_argument("--digits", type=_whole_number(0, 20), default=4,
                        help="decimals in the printed tables, 0 to 20 (default 4)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print the best model only")
    return parser


def _format_table(frame, digits):
    return frame.to_string(float_format=lambda v: f"{v:.{digits}f}", na_rep="NA")


def _plot_format(path) -> str:
    """The image format of ``--plot FILE`` from its extension (checked before fitting)."""
    import os

    from matplotlib.figure import Figure

    from .cli import CommandError

    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    supported = Figure().canvas.get_supported_filetypes()
    if fmt not in supported:
        raise CommandError(
            f"--plot: cannot write a {fmt!r} image; use one of {', '.join(sorted(supported))}"
        )
    return fmt


def run(args) -> int:
    """Run ``gaussmix select`` with parsed ``args``; returns the exit status."""
    import contextlib
    import os

    from ._cli_stream import BudgetError
    from ._files.data import DataError
    from ._mclust.select import select
    from .cli import (CommandError, _check_output, _error, _open_stream, _os_message,
                      _read_table, _show_progress, _streams)

    try:
        # Every output checked before the grid is fitted, not after minutes of it.
        _check_output(args.out, [args.data])
        if args.plot:
            _check_output(args.plot, [args.data])
            _plot_format(args.plot)
            if args.out and os.path.abspath(args.out) == os.path.abspath(args.plot):
                raise CommandError("--out and --plot name the same file")
        streamed = _streams(args)
        if streamed:
            # Cells run side by side on threads, each pass over the file: one bar
            # counts the rows they read, beside select's bar of cells.
            X = _open_stream(args, "select", shared=True)
        else:
            # A DataFrame when the file has column names: select keeps them for plots.
            X = _read_table(args).frame()
    except (CommandError, BudgetError, DataError) as exc:
        # fit's messages and status: a data file that cannot be used is a user error.
        _error(exc)
        return 1
    except OSError as exc:
        _error(_os_message(exc))
        return 1
    models = [m.strip() for m in args.models.split(",")] if args.models else None
    try:
        with X if streamed else contextlib.nullcontext():  # closes the rows' bar
            result = select(X, G=args.G, models=models, tol=args.tol,
                            random_state=args.seed, verbose=_show_progress(args),
                            nan_policy=args.nan_policy)
    except (ValueError, RuntimeError) as exc:
        _error(exc)
        return 1
    if args.quiet:
        print(f"{result.best_model},{result.best_G} BIC={result.bic_value:.{args.digits}f} "
              "(higher is better)")
    else:
        print("Bayesian Information Criterion (BIC; higher is better):")
        print(_format_table(result.bic, args.digits))
        if args.icl:
            print()
            print("Integrated Complete-data Likelihood (ICL; higher is better):")
            print(_format_table(result.icl, args.digits))
        print()
        print(result.summary())
    if args.out:
        from ._files.model_files import save

        save(result, args.out)  # atomic; the best model, with the BIC and ICL tables
        if not args.quiet:
            print(f"\nmodel {result.best_model},{result.best_G} written to {args.out}")
    if args.plot:
        from ._files.model_files import atomic_write

        fig = result.plot_bic()
        fmt = _plot_format(args.plot)
        atomic_write(args.plot, lambda f: fig.savefig(f, format=fmt, bbox_inches="tight"))
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
