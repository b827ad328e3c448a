"""``mgnet report <folder>...``: one table over runs and sweeps, with CSV, Markdown and plots."""

import argparse
import csv
import io
import logging
import math
import sys
from pathlib import Path

from mgnet_cli.report.plots import accuracy_curves, accuracy_vs_parameters
from mgnet_cli.report.runs import Run, find_runs
from mgnet_cli.report.table import group_runs, summary_rows
from mgnet_cli.train.checkpoint import write_atomic

log = logging.getLogger(__name__)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mgnet report", description=__doc__.split(":", 1)[1].strip())
    parser.add_argument("folders", nargs="+", type=Path, help="run folders and/or sweep folders")
    parser.add_argument("--output", type=Path, default=None,
                        help="where report.md, report.csv and the PNGs go (default: the folder given, "
                             "or ./report with several)")
    return parser.parse_args(argv)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| group | runs | seeds | best test acc (%) | final test acc (%) | parameters | epochs "
             "| wall time (s) | train img/s |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        speed = row["train_images_per_s_mean"]
        lines.append(
            f"| {row['group']} | {row['runs']} | {row['seeds']} "
            f"| {100 * row['best_test_acc_mean']:.2f} ± {100 * row['best_test_acc_std']:.2f} "
            f"| {100 * row['final_test_acc_mean']:.2f} ± {100 * row['final_test_acc_std']:.2f} "
            f"| {row['parameters']:,} | {row['epochs']} | {row['wall_time_s_mean']:.1f} "
            f"| {'—' if math.isnan(speed) else f'{speed:.0f}'} |")
    return "\n".join(lines)


def problems(runs: list[Run]) -> list[str]:
    return [f"- {run.status}: {run.folder}" + (f" — {run.error}" if run.error else "")
            for run in runs if not run.completed]


def write_report(runs: list[Run], output: Path) -> str:
    """Writes report.md, report.csv and the plots; returns the Markdown."""
    output.mkdir(parents=True, exist_ok=True)
    groups = group_runs(runs)
    rows = summary_rows(groups)
    text = io.StringIO()
    if rows:
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_atomic(output / "report.csv", lambda file: file.write(text.getvalue().encode()))
    markdown = [f"# mgnet report\n\n{sum(r.completed for r in runs)} completed runs of {len(runs)} found; "
                "mean ± std over seeds. Best = the best epoch's test accuracy (the paper's protocol); "
                "final = the last epoch's.\n", markdown_table(rows)]
    if groups:
        accuracy_curves({group.label: group.curve() for group in groups}, output / "accuracy_curves.png")
        accuracy_vs_parameters({row["group"]: (row["parameters"], row["final_test_acc_mean"],
                                               row["final_test_acc_std"]) for row in rows},
                               output / "accuracy_vs_parameters.png")
        markdown.append("\n![test accuracy per epoch](accuracy_curves.png)\n\n"
                        "![final accuracy against parameters](accuracy_vs_parameters.png)")
    missing = problems(runs)
    markdown.append("\n## Missing or failed runs\n\n" + ("\n".join(missing) if missing else "none"))
    report = "\n".join(markdown) + "\n"
    write_atomic(output / "report.md", lambda file: file.write(report.encode()))
    return report


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    arguments = parse(argv)
    try:
        runs = find_runs(arguments.folders)
    except FileNotFoundError as error:
        print(f"mgnet report: error: {error}", file=sys.stderr)
        sys.exit(2)
    if not runs:
        print(f"mgnet report: error: no runs (folders with results.json or .hydra/) under "
              f"{' '.join(map(str, arguments.folders))}", file=sys.stderr)
        sys.exit(2)
    output = arguments.output or (arguments.folders[0] if len(arguments.folders) == 1 else Path("report"))
    report = write_report(runs, output)
    print(report)
    print(f"written: {output / 'report.md'}, {output / 'report.csv'} and the PNG plots")
