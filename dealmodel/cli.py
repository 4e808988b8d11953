"""The ``dealmodel`` command: a thin layer over the Python API.

Exit codes: 0 success, 2 bad input (an invalid deal file or argument), 1 anything unexpected.
Errors are printed as messages, never as tracebacks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from dealmodel import metrics
from dealmodel._version import __version__
from dealmodel.engine import simulate
from dealmodel.io import DealError, deal_json_schema, expand_files, load_deal
from dealmodel.metrics import METRICS

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
    for name in args.files:
        if Path(name).is_dir() and not expand_files([name]):
            bad += 1
            print(f"{name}: no deal files (.yaml, .yml or .json) in this directory", file=sys.stderr)
    for path in expand_files(args.files):
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
    print(f"{result.paths:,} paths, seed {result.seed}; money in {cur} millions; "
          f"timing {deal.timing.replace('_', ' ')}\n")
    print(f"Biobucks (upfront + milestones if all succeed):          {_fmt(result.biobucks):>10}")
    print(f"Total contract value (biobucks + fees at list price):    {_fmt(result.total_contract_value):>10}")
    print(f"Expected PV of all payments to the partner:              {_fmt(result.expected_pv_to_partner):>10}")
    summary = result.summary()
    cols = [
        ("expected_npv", "eNPV", 1),
        ("std_npv", "sd", 1),
        ("p5", "P5", 1),
        ("p50", "P50", 1),
        ("p95", "P95", 1),
        ("prob_loss", "P(loss)", None),
        ("expected_shortfall_5", "worst 5%", 1),
        ("risk_share", "risk share", 2),
        ("value_share", "value share", 2),
    ]
    header = f"{'':10}" + "".join(f"{label:>13}" for _, label, _ in cols)
    print("\n" + header)
    for party in summary.index:
        row = summary.loc[party]
        cells = [f"{float(row[c]):.1%}" if d is None and math.isfinite(float(row[c])) else _fmt(float(row[c]), d or 1)
                 for c, _, d in cols]
        print(f"{party:10}" + "".join(f"{cell:>13}" for cell in cells))
    print("  eNPV: mean NPV over the simulated futures; sd: its spread; P5/P50/P95: the NPV is below these in 5%, "
          "50%, 95% of them;\n  P(loss): share with NPV < 0; worst 5%: mean NPV of the worst 5% (expected "
          "shortfall); risk share: slope of the\n  party's NPV on the program's (0 = carries none of its risk); "
          "value share: its eNPV / (sponsor's + partner's).")
    for party, ce in result.certainty_equivalents().items():
        tolerance = getattr(deal.parties, party).risk_tolerance
        print(f"{party} certainty equivalent (risk tolerance {_fmt(tolerance)}): {_fmt(ce)}  "
              f"(eNPV {_fmt(float(summary.loc[party, 'expected_npv']))})")
    for note in metrics.notes(result.npv):
        print(f"note: {note}")
    print("\nExpected PV of payments to the partner, by term kind:")
    for kind, value in result.payments_by_kind().items():
        print(f"  {kind.replace('_', ' '):22}{_fmt(value):>10}")
    print("\nCandidates:")
    for name, row in result.candidates.items():
        print(
            f"  {name:14} from {row['start_phase']:12} approved on {row['prob_approval']:6.1%} of the futures"
            f"   expected launch {row['expected_launch_year']:.1f}" if math.isfinite(row["expected_launch_year"])
            else f"  {name:14} from {row['start_phase']:12} approved on {row['prob_approval']:6.1%} of the futures"
        )
        stops = [f"before {k.removeprefix('prob_stopped_before_')} {v:.1%}" for k, v in row.items()
                 if k.startswith("prob_stopped_before_") and v >= 0.0005]
        if stops:
            print(f"  {'':14} stopped at a gate: " + ", ".join(stops))
    if deal.decision_rule != "none":
        print(f"Gate decisions: {deal.decision_rule}, decided by the {deal.decisions.owner} "
              "(dealmodel decisions FILE prices them against no decisions).")


def cmd_value(args: argparse.Namespace) -> int:
    deal = load_deal(args.file)
    update, close = _progress(_show(args) and args.paths >= 200_000, "path")
    try:
        result = simulate(deal, paths=args.paths, seed=args.seed, keep_flows=False, yearly_sample=0,
                          progress=None if update is None else lambda done: update(done, args.paths))
    finally:
        close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        _print_value_table(result)
    return EXIT_OK


def _load_all(files: Sequence[str]) -> dict:
    """Deals by label (the deal's name, made unique), with every file's problems reported at once."""
    deals, problems = {}, []
    for path in files:
        try:
            deal = load_deal(path)
        except DealError as exc:
            problems += [f"{exc.source}: {p}" for p in exc.problems]
            continue
        label = deal.name
        k = 2
        while label in deals:
            label = f"{deal.name} ({k})"
            k += 1
        deals[label] = (deal, path)
    if problems:
        raise DealError("input", problems)
    return deals


def _progress(enabled: bool, unit: str):
    """A progress bar on stderr: ``update(done, total)`` and ``close()``; does nothing when disabled."""
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(unit=unit, unit_scale=unit == "path", file=sys.stderr, leave=False)

    def update(done: int, total: int | None = None) -> None:
        if total is not None:
            bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


def _show(args: argparse.Namespace) -> bool:
    return not args.json and sys.stderr.isatty()


def cmd_compare(args: argparse.Namespace) -> int:
    from dealmodel.compare import compare

    files = list(args.files)
    if args.baseline and args.baseline not in files:
        files.insert(0, args.baseline)
    loaded = _load_all(files)
    baseline = None
    if args.baseline:
        baseline = next(label for label, (_, path) in loaded.items() if path == args.baseline)
    update, close = _progress(_show(args), "path")
    try:
        comparison = compare({k: d for k, (d, _) in loaded.items()}, paths=args.paths, seed=args.seed,
                             baseline=baseline, progress=update, sources={k: p for k, (_, p) in loaded.items()},
                             keep_flows=bool(args.out) and args.out.lower().endswith(".xlsx"))
    finally:
        close()
    return _report_comparison(args, comparison, f"{len(loaded)} structures")


def _report_comparison(args: argparse.Namespace, comparison, what: str) -> int:
    """Write ``--out``, then print the comparison as JSON (``--json``) or as a table."""
    from dealmodel.export import export

    paths, seed = comparison.paths, comparison.seed
    if args.out:
        export(args.out, comparison=comparison)
    if args.json:
        table = comparison.table.reset_index()
        print(json.dumps({"paths": paths, "seed": seed, "baseline": comparison.baseline,
                          "variants": json.loads(table.to_json(orient="records"))}, indent=2))
        return EXIT_OK
    deal = next(iter(comparison.results.values())).deal
    print(f"{what} on {paths:,} common paths, seed {seed}; "
          f"money in {deal.currency} millions; baseline: {comparison.baseline}\n")
    t = comparison.table
    width = max(12, max(len(v) for v in t.index) + 2)
    cols = [("total_contract_value", "contract value", 1), ("sponsor_expected_npv", "sponsor eNPV", 1),
            ("partner_expected_npv", "partner eNPV", 1), ("partner_p5", "partner P5", 1),
            ("partner_prob_loss", "partner P(loss)", None), ("partner_risk_share", "partner risk share", 2),
            ("partner_diff", "partner diff", 1), ("joint_gain", "joint gain", 1)]
    widths = [max(12, len(label) + 2) for _, label, _ in cols]
    print(f"{'':{width}}" + "".join(f"{label:>{w}}" for (_, label, _), w in zip(cols, widths, strict=True)))
    for name, row in t.iterrows():
        cells = []
        for (c, _, d), w in zip(cols, widths, strict=True):
            text = f"{float(row[c]):.1%}" if d is None else _fmt(float(row[c]), d)
            if c in ("partner_diff", "joint_gain") and name != comparison.baseline:
                text += f" ±{_fmt(2 * float(row[c + '_se']), 1)}"
            cells.append(f"{text:>{w}}")
        flag = "" if row["paired"] else "  (not paired: different program)"
        print(f"{name:{width}}" + "".join(cells) + flag)
    print("\nP5: the partner's NPV is below this in 5% of the futures; P(loss): share of futures with NPV < 0; "
          "risk share:\nslope of the partner's NPV on the program's (0 = none of its risk); diff and joint gain "
          "(sponsor's + partner's\nchange): against the baseline, ± two paired standard errors.")
    decisions = comparison.decisions()
    if decisions:
        print("\nGate decisions (dealmodel decisions FILE for one structure in full):")
        for name, report in decisions.items():
            print(f"{name:{width}} value of flexibility {report.flexibility:+,.1f} ± {report.flexibility_se:,.1f}; "
                  f"distortion {report.distortion:,.1f} ± {report.distortion_se:,.1f} of program value")
    if args.out:
        print(f"wrote {args.out}")
    return EXIT_OK


def cmd_scenario(args: argparse.Namespace) -> int:
    from dealmodel.scenario import load_scenario, load_scenarios

    if args.list:
        for name, sc in load_scenarios(args.file).items():
            print(f"{name}: {len(sc.structures)} structures, {sc.paths:,} paths, seed {sc.seed}")
        return EXIT_OK
    scenario = load_scenario(args.file, args.name)
    deals = scenario.deals()
    if args.baseline is not None and args.baseline not in deals:
        raise ValueError(f"--baseline: {args.baseline!r} is not a structure of scenario {scenario.name!r} "
                         f"({', '.join(deals)})")
    update, close = _progress(_show(args), "path")
    try:
        from dealmodel.compare import compare

        comparison = compare(deals, paths=scenario.paths, seed=scenario.seed, baseline=args.baseline,
                             progress=update, keep_flows=bool(args.out) and args.out.lower().endswith(".xlsx"))
    finally:
        close()
    return _report_comparison(args, comparison, f"scenario {scenario.name!r}: {len(deals)} structures")


def cmd_tornado(args: argparse.Namespace) -> int:
    from dealmodel.export import export
    from dealmodel.sensitivity import tornado

    deal = load_deal(args.file)
    update, close = _progress(_show(args), "input")
    try:
        table = tornado(deal, party=args.party, metric=args.metric, paths=args.paths, seed=args.seed,
                        progress=update)
    finally:
        close()
    if args.out:
        export(args.out, tornado=table)
    if args.json:
        print(json.dumps({"deal": deal.name, "party": args.party, "metric": args.metric, "paths": args.paths,
                          "seed": args.seed, "bars": json.loads(table.to_json(orient="records"))}, indent=2))
        return EXIT_OK
    base = float(table["base"].iloc[0]) if len(table) else float("nan")
    print(f"{deal.name}: {args.party}'s {args.metric} = {_fmt(base)} ({deal.currency} millions); "
          f"{args.paths:,} paths, seed {args.seed}\n")
    width = max([len(x) for x in table["label"]] + [10]) + 2
    print(f"{'input':{width}}{'at low':>12}{'at high':>12}{'swing':>10}   low -> high")
    for _, row in table.iterrows():
        print(f"{row['label']:{width}}{_fmt(row['value_low']):>12}{_fmt(row['value_high']):>12}"
              f"{_fmt(row['swing']):>10}   {row['low']} -> {row['high']}")
    if args.out:
        print(f"\nwrote {args.out}")
    return EXIT_OK


def cmd_solve(args: argparse.Namespace) -> int:
    from dealmodel.solver import solve

    deal = load_deal(args.file)
    target = load_deal(args.match) if args.match else args.target
    solution = solve(deal, args.param, target, party=args.party, metric=args.metric, low=args.low,
                     high=args.high, paths=args.paths, seed=args.seed)
    if args.json:
        print(json.dumps({"deal": deal.name, **solution.to_dict()}, indent=2))
        return EXIT_OK
    against = f" (the value under {target.name})" if args.match else ""
    print(f"{deal.name}")
    print(f"{args.param} = {solution.value:.6g} gives the {args.party}'s {args.metric} "
          f"{_fmt(solution.achieved, 2)}, target {_fmt(solution.target, 2)}{against}")
    if not math.isnan(solution.standard_error):
        print(f"Monte Carlo standard error of that figure: {_fmt(solution.standard_error, 2)} "
              f"({args.paths:,} paths, seed {args.seed})")
    return EXIT_OK


def _walkaway_arg(text: str):
    """A walk-away on the command line: a number (millions) or a deal file."""
    try:
        return float(text)
    except ValueError:
        return load_deal(text)


def cmd_negotiate(args: argparse.Namespace) -> int:
    from dealmodel.negotiate import negotiate

    deal = load_deal(args.file)
    if args.walkaway is None and (args.sponsor_walkaway is None or args.partner_walkaway is None):
        raise ValueError("give --walkaway FILE_OR_NUMBER for both parties, or both --sponsor-walkaway and "
                         "--partner-walkaway")
    walk = _walkaway_arg(args.walkaway) if args.walkaway is not None else None
    walkaway = {"sponsor": _walkaway_arg(args.sponsor_walkaway) if args.sponsor_walkaway is not None else walk,
                "partner": _walkaway_arg(args.partner_walkaway) if args.partner_walkaway is not None else walk}
    ranges = None
    if args.range:
        if len(args.range) != len(args.param):
            raise ValueError(f"give one --range LOW HIGH per --param ({len(args.param)} parameters, "
                             f"{len(args.range)} ranges)")
        ranges = [tuple(r) for r in args.range]
    if args.out and not args.out.lower().endswith(".xlsx"):
        raise ValueError(f"--out: a negotiation is written as .xlsx (got {args.out})")
    result = negotiate(deal, args.param, walkaway, measure=args.measure, ranges=ranges, paths=args.paths,
                       seed=args.seed, weight=args.weight, grid=args.grid)
    if args.out:
        from dealmodel.export import write_negotiation

        write_negotiation(result, args.out)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.summary())
        print(f"values are {'certainty equivalents' if args.measure == 'ce' else 'expected NPVs'} in $M; ± one "
              f"standard error on common paths ({args.paths:,} paths, seed {args.seed})")
    return EXIT_OK


def cmd_decisions(args: argparse.Namespace) -> int:
    from dealmodel.decisions import decision_report

    deal = load_deal(args.file)
    if args.out and not args.out.lower().endswith((".xlsx", ".json")):
        raise ValueError(f"--out: a decision report is written as .xlsx or .json (got {args.out})")
    report = decision_report(deal, paths=args.paths, seed=args.seed, rule=args.rule, owner=args.owner,
                             threshold=args.threshold)
    if args.out:
        from dealmodel.export import write_decisions

        write_decisions(report, args.out)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.summary())
    return EXIT_OK


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _open_partial(partial: Path, settings: dict, items: list) -> tuple:
    """Open (and lock) the partial-rows file of a batch run: ``(stream, rows done, note)``.

    One run at a time writes an output: a second run on the same --out is refused while the first
    holds the lock. A partial file left by an interrupted run with the same settings is resumed
    (its rows are kept and not valued again); one from other settings is kept under a new name.
    Nothing is ever truncated.
    """
    import fcntl

    while True:
        stream = partial.open("a+", encoding="utf-8")
        try:
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            stream.close()
            raise ValueError(f"another dealmodel batch is writing {partial.name.removesuffix('.partial.jsonl')} "
                             f"(its rows go to {partial}); wait for it to finish or choose another --out") from None
        try:
            same = os.fstat(stream.fileno()).st_ino == partial.stat().st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        stream.close()  # the file was replaced while we waited for it: lock the new one
    stream.seek(0)
    lines = stream.read().splitlines()
    header = {"dealmodel_batch": 1, "settings": settings}
    if not lines:
        stream.write(json.dumps(header) + "\n")
        stream.flush()
        return stream, {}, ""
    try:
        found = json.loads(lines[0])
    except json.JSONDecodeError:
        found = None
    if found == header:
        index = {item.label: i for i, item in enumerate(items)}
        done = {}
        for line in lines[1:]:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill: that item is valued again
            if row.get("item") in index:
                done[index[row["item"]]] = row
        return stream, done, (f"resuming: {len(done)} of {len(items)} rows were saved by an earlier run"
                              if done else "")
    n = 1
    while (kept := partial.with_name(f"{partial.name.removesuffix('.jsonl')}.{n}.jsonl")).exists():
        n += 1
    kept.write_text("\n".join(lines) + "\n", encoding="utf-8")
    stream.seek(0)
    stream.truncate()  # its rows are safe in the copy just written
    stream.write(json.dumps(header) + "\n")
    stream.flush()
    return stream, {}, f"{partial.name} held rows of a run with other settings; kept them as {kept.name}"


def cmd_batch(args: argparse.Namespace) -> int:
    from dealmodel import batch
    from dealmodel.export import write_table

    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".xlsx", ".parquet", ".json"):
        raise ValueError(f"--out must end in .csv, .xlsx, .parquet or .json (got {out.name!r})")
    files = expand_files(args.inputs)
    if not files:
        raise ValueError("no deal files found in " + ", ".join(args.inputs))
    items = batch.deal_items(files)
    if args.grid:
        grid = batch.read_grid(args.grid)
        items = [point for item in items for point in (
            batch.grid_items(item.deal, grid, item.source) if item.deal is not None else [item])]
    settings = {"paths": args.paths, "seed": args.seed, "grid": args.grid or "", "items": [i.label for i in items]}
    partial = out.with_name(out.name + ".partial.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    stream, done, note = _open_partial(partial, settings, items)
    if note:
        print(f"dealmodel: {note}", file=sys.stderr)
    update, close = _progress(_show(args), "task")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        def on_row(row: dict) -> None:  # every finished row is on disk at once: nothing is lost
            stream.write(json.dumps(row, default=str) + "\n")
            stream.flush()

        try:
            table = batch.value_items(items, paths=args.paths, seed=args.seed, n_jobs=args.workers,
                                      backend=args.backend, scheduler=args.scheduler, progress=update, on_row=on_row,
                                      done=done)
        except KeyboardInterrupt:
            close()
            print(f"dealmodel: interrupted; the rows finished so far are in {partial}; run the same command again "
                  f"to resume", file=sys.stderr)
            stream.close()
            return 130
        finally:
            close()
        meta = {"paths": args.paths, "seed": args.seed, "workers": args.workers, "backend": args.backend or "",
                "grid": args.grid or "", "inputs": ", ".join(files), "dealmodel_version": __version__}
        write_table(table, out, sheet="Batch", meta=meta)
        partial.unlink(missing_ok=True)  # still under the lock: a run waiting on it finds no partial
        stream.close()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if not stream.closed:
            stream.close()
    failed = table[table["error"].notna()] if "error" in table else table.iloc[0:0]
    if args.json:
        print(json.dumps({"out": str(out), "rows": len(table), "failed": list(failed.index)}, indent=2))
    else:
        print(f"valued {len(table) - len(failed)} of {len(table)} items on {args.paths:,} paths, seed {args.seed}; "
              f"wrote {out}")
    for label, row in failed.iterrows():
        print(f"{label}: {row['error']}", file=sys.stderr)
    return EXIT_USAGE if len(failed) else EXIT_OK


# --------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dealmodel", description="Value and compare sponsor / CRO-CDMO partnership deals.")
    parser.add_argument("--version", action="version", version=f"dealmodel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("validate", help="check deal files (or every deal file of a directory), listing every problem")
    p.add_argument("files", nargs="+", metavar="FILE_OR_DIR")
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

    p = sub.add_parser("compare", help="value structures side by side on common paths")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--baseline", metavar="FILE", help="the structure differences are taken against (default: first)")
    p.add_argument("--out", metavar="PATH", help="also write the comparison: .xlsx, .csv or .json")
    _run_options(p, default_paths=20_000)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("scenario", help="value a saved scenario (from the app's scenarios file)")
    p.add_argument("file", metavar="FILE", help="a scenarios file (YAML)")
    p.add_argument("--name", help="which scenario of the file (default: the last saved)")
    p.add_argument("--list", action="store_true", help="list the file's scenarios and stop")
    p.add_argument("--baseline", metavar="STRUCTURE", help="structure differences are taken against (default: first)")
    p.add_argument("--out", metavar="PATH", help="also write the comparison: .xlsx, .csv or .json")
    p.add_argument("--json", action="store_true", help="print a JSON document instead of a table")
    p.set_defaults(func=cmd_scenario)

    p = sub.add_parser("tornado", help="which inputs swing a party's value most")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--party", choices=["sponsor", "partner", "program"], default="partner")
    p.add_argument("--metric", choices=METRICS, default="expected_npv")
    p.add_argument("--out", metavar="PATH", help="also write the table: .xlsx, .csv or .json")
    _run_options(p, default_paths=10_000)
    p.set_defaults(func=cmd_tornado)

    p = sub.add_parser("solve", help="find the term value that hits a target")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--param", required=True, metavar="PATH",
                   help="e.g. terms[1].tiers[0].rate, scale(milestone), all(phases.phase3.success_probability)")
    goal = p.add_mutually_exclusive_group(required=True)
    goal.add_argument("--target", type=float, metavar="NUMBER", help="the value the metric must reach")
    goal.add_argument("--match", metavar="FILE", help="reach the metric this other deal gives the party")
    p.add_argument("--party", choices=["sponsor", "partner", "program"], default="partner")
    p.add_argument("--metric", choices=METRICS, default="expected_npv")
    p.add_argument("--low", type=float, help="lowest value to search (default by parameter)")
    p.add_argument("--high", type=float, help="highest value to search")
    _run_options(p, default_paths=20_000)
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser("negotiate", help="the zone of agreement over one or two terms, and its fair splits")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--param", required=True, action="append", metavar="PATH",
                   help="a term parameter (twice for a two-parameter region), e.g. terms[1].tiers[0].rate")
    p.add_argument("--walkaway", metavar="FILE_OR_NUMBER",
                   help="both parties' walk-away: a deal file valued on the same paths, or a number ($M)")
    p.add_argument("--sponsor-walkaway", metavar="FILE_OR_NUMBER", help="the sponsor's own walk-away")
    p.add_argument("--partner-walkaway", metavar="FILE_OR_NUMBER", help="the partner's own walk-away")
    p.add_argument("--measure", choices=["enpv", "ce"], default="enpv",
                   help="expected NPV, or certainty equivalent at each party's risk_tolerance")
    p.add_argument("--range", nargs=2, type=float, action="append", metavar=("LOW", "HIGH"),
                   help="range of each --param, in order (default by kind of parameter)")
    p.add_argument("--weight", type=float, default=0.5, help="the sponsor's bargaining weight (Nash), default 0.5")
    p.add_argument("--grid", type=_positive_int, default=25, help="points per parameter (default 25)")
    p.add_argument("--out", metavar="PATH.xlsx", help="also write the zone, the splits and a chart to a workbook")
    _run_options(p, default_paths=20_000)
    p.set_defaults(func=cmd_negotiate)

    p = sub.add_parser("decisions", help="go/no-go at the gates: the value of stopping candidates, and how the "
                       "terms change who is stopped")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--rule", choices=["optimal", "threshold"], help="default: the deal's own, else optimal")
    p.add_argument("--owner", choices=["sponsor", "partner", "program"],
                   help="whose value decides (default: the deal's own, else the sponsor)")
    p.add_argument("--threshold", type=float, metavar="PEAK_SALES",
                   help="threshold rule: the least forecast peak sales ($M a year) at which a candidate goes on")
    p.add_argument("--out", metavar="PATH", help="also write the report: .xlsx or .json")
    _run_options(p, default_paths=20_000)
    p.set_defaults(func=cmd_decisions)

    p = sub.add_parser("batch", help="value many deals, or a grid of terms, in parallel")
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR")
    p.add_argument("--grid", metavar="GRID.yaml", help="sweep each deal over {parameter path: [values]}")
    p.add_argument("--workers", type=_positive_int, default=1, help="parallel processes or Dask workers")
    p.add_argument("--backend", choices=["joblib", "dask"], help="default: joblib with --workers > 1")
    p.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler (implies --backend dask)")
    p.add_argument("--out", required=True, metavar="PATH", help="results: .csv, .xlsx, .parquet or .json")
    _run_options(p, default_paths=100_000)
    p.set_defaults(func=cmd_batch)
    return parser


def _run_options(p: argparse.ArgumentParser, default_paths: int) -> None:
    p.add_argument("--paths", type=_positive_int, default=default_paths,
                   help=f"simulated paths (default {default_paths})")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


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
    except OSError as exc:  # an output that cannot be written: a directory, a read-only place, a full disk
        where = f" {exc.filename}" if exc.filename else ""
        print(f"dealmodel: cannot write{where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # a bug: say so plainly, still no traceback for the user
        print(f"dealmodel: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
