"""The ``dealmodel`` command: a thin layer over the Python API.

Exit codes: 0 success, 2 bad input (an invalid deal file or argument), 1 anything unexpected.
Errors are printed as messages, never as tracebacks.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

from dealmodel import __version__
from dealmodel.engine import simulate
from dealmodel.io import DealError, deal_json_schema, load_deal

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 with usage: keep that, shorter
        self.print_usage(sys.stderr)
        sys.stderr.write(f"dealmodel: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


# --------------------------------------------------------------------------- commands


def cmd_validate(args: argparse.Namespace) -> int:
    bad = 0
    for path in args.files:
        try:
            deal = load_deal(path)
        except DealError as exc:
            bad += 1
            for problem in exc.problems:
                print(f"{path}: {problem}", file=sys.stderr)
        else:
            if not args.quiet:
                print(f"{path}: ok ({deal.name}, {len(deal.candidates)} candidates, {len(deal.terms)} terms)")
    return EXIT_USAGE if bad else EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(deal_json_schema(), indent=2))
    return EXIT_OK


def _fmt(x: float, digits: int = 1) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


def _print_value_table(result) -> None:
    deal = result.deal
    cur = deal.currency
    print(f"{deal.name}")
    print(f"{result.paths:,} paths, seed {result.seed}; money in {cur} millions\n")
    print(f"Headline deal value to the partner: {_fmt(result.headline_value)}")
    summary = result.summary()
    cols = [
        ("expected_npv", "eNPV", 1),
        ("std_npv", "std", 1),
        ("p5", "P5", 1),
        ("p50", "P50", 1),
        ("p95", "P95", 1),
        ("prob_loss", "P(loss)", 3),
        ("expected_shortfall_5", "ES 5%", 1),
        ("risk_share", "risk sh.", 3),
        ("value_share", "value sh.", 3),
    ]
    header = f"{'':10}" + "".join(f"{label:>11}" for _, label, _ in cols)
    print("\n" + header)
    for party in summary.index:
        row = summary.loc[party]
        print(f"{party:10}" + "".join(f"{_fmt(float(row[c]), d):>11}" for c, _, d in cols))
    print("\nExpected PV of payments to the partner, by term kind:")
    for kind, value in result.payments_by_kind().items():
        print(f"  {kind:14}{_fmt(value):>10}")
    print("\nCandidates:")
    for name, row in result.candidates.items():
        print(
            f"  {name:14} from {row['start_phase']:12} P(approval) {row['prob_approval']:6.3f}"
            f"   expected launch {row['expected_launch_year']:.1f}"
        )


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="path", unit_scale=True, file=sys.stderr, leave=False)
    state = {"done": 0}

    def update(done: int) -> None:
        bar.update(done - state["done"])
        state["done"] = done

    return update, bar.close


def cmd_value(args: argparse.Namespace) -> int:
    deal = load_deal(args.file)
    show = not args.json and args.paths >= 200_000 and sys.stderr.isatty()
    update, close = _progress_bar(args.paths, show)
    try:
        result = simulate(deal, paths=args.paths, seed=args.seed, progress=update)
    finally:
        close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        _print_value_table(result)
    return EXIT_OK


# --------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dealmodel", description="Value and compare sponsor / CRO-CDMO partnership deals.")
    parser.add_argument("--version", action="version", version=f"dealmodel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("validate", help="check deal files and list every problem")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print the JSON Schema of deal files")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("value", help="simulate a deal and print what it is worth to each party")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--paths", type=_positive_int, default=100_000, help="simulated paths (default 100000)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print a JSON document instead of a table")
    p.set_defaults(func=cmd_value)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DealError as exc:
        for problem in exc.problems:
            print(f"{exc.source}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"dealmodel: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dealmodel: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug: say so plainly, still no traceback for the user
        print(f"dealmodel: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
