"""One report's files: report.md (tables, plots, what was left out and why), CSV tables, PNGs.

Every file is written atomically, and only the files written are named in the Markdown and in
the list ``write_report`` returns.
"""

import csv
import io
import math
from collections.abc import Callable
from pathlib import Path

from mgnet_cli.report.plots import (accuracy_curves, accuracy_vs_parameters, drawable,
                                    residual_histories)
from mgnet_cli.report.runs import Survey
from mgnet_cli.report.table import Group, group_runs, solve_rows, summary_rows
from mgnet_cli.storage import write_atomic

PROTOCOL = ("Mean ± std over seeds. Best = the best epoch's test accuracy (the paper's protocol); "
            "final = the last epoch's.")


def cell(value: float, spec: str) -> str:
    """A number as a table shows it; a dash where no run recorded it."""
    return "—" if isinstance(value, float) and math.isnan(value) else format(value, spec)


def escaped(label: str) -> str:
    """A label fit for a Markdown table cell."""
    return label.replace("|", "\\|")


def training_table(rows: list[dict]) -> str:
    lines = ["| group | runs | seeds | best test acc (%) | final test acc (%) | parameters | epochs "
             "| wall time (s) | train img/s |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        lines.append(
            f"| {escaped(row['group'])} | {row['runs']} | {row['seeds']} "
            f"| {100 * row['best_test_acc_mean']:.2f} ± {100 * row['best_test_acc_std']:.2f} "
            f"| {100 * row['final_test_acc_mean']:.2f} ± {100 * row['final_test_acc_std']:.2f} "
            f"| {row['parameters']:,} | {row['epochs']} | {cell(row['wall_time_s_mean'], '.1f')} "
            f"| {cell(row['train_images_per_s_mean'], '.0f')} |")
    return "\n".join(lines)


def solve_table(rows: list[dict]) -> str:
    lines = ["| group | runs | seeds | n | status | convergence factor | cycles | final relative residual "
             "| setup (s) | solve (s) |",
             "| --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        factor = cell(row["convergence_factor_mean"], ".3f")
        if factor != "—":
            factor += f" ± {cell(row['convergence_factor_std'], '.3f')}"
        lines.append(
            f"| {escaped(row['group'])} | {row['runs']} | {row['seeds']} | {cell(row['n'], '.0f')} "
            f"| {row['status']} | {factor} | {cell(row['cycles_mean'], 'g')} "
            f"| {cell(row['final_relative_residual_mean'], '.2e')} | {cell(row['setup_time_s_mean'], '.3g')} "
            f"| {cell(row['solve_time_s_mean'], '.3g')} |")
    return "\n".join(lines)


def not_included(survey: Survey) -> list[str]:
    """One line per run left out of the tables, and per file or folder that could not be used."""
    lines = [f"- {run.status}: {run.folder}" + (f" — {run.error}" if run.error else "")
             for run in survey.runs if not run.completed]
    return lines + [f"- not used: {path} — {reason}" for path, reason in survey.damaged.items()]


class Writer:
    """Writes the files of one report into ``output`` and remembers which it wrote."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.written: list[Path] = []

    def text(self, name: str, content: str) -> None:
        write_atomic(self.output / name, lambda file: file.write(content.encode()))
        self.written.append(self.output / name)

    def table(self, name: str, rows: list[dict]) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        self.text(name, text.getvalue())

    def plot(self, name: str, draw: Callable[[Path], object], caption: str) -> str:
        draw(self.output / name)
        self.written.append(self.output / name)
        return f"![{caption}]({name})"


def training_part(groups: list[Group], files: Writer) -> str:
    """The training table, its CSV and its two plots; returns the Markdown section."""
    rows = summary_rows(groups)
    files.table("report.csv", rows)
    curves = files.plot("accuracy_curves.png", lambda path: accuracy_curves(
        {group.label: group.curve() for group in groups}, path), "test accuracy per epoch")
    sizes = files.plot("accuracy_vs_parameters.png", lambda path: accuracy_vs_parameters(
        {row["group"]: (row["parameters"], row["final_test_acc_mean"], row["final_test_acc_std"])
         for row in rows}, path), "final accuracy against parameters")
    return f"## Training runs\n\n{PROTOCOL}\n\n{training_table(rows)}\n\n{curves}\n\n{sizes}\n"


def solve_part(groups: list[Group], files: Writer) -> str:
    """The solve table, its CSV and (where a run recorded one) the residual plot; returns the section."""
    rows = solve_rows(groups)
    files.table("report_solve.csv", rows)
    part = f"## Solve runs\n\nMean over seeds (± std of the convergence factor).\n\n{solve_table(rows)}\n"
    curves = {group.label: curve for group in groups
              if (curve := group.residual_curve()) is not None and drawable(curve[1])}
    if curves:
        part += "\n" + files.plot("residual_histories.png", lambda path: residual_histories(curves, path),
                                  "relative residual per cycle") + "\n"
    return part


def write_report(survey: Survey, output: Path) -> tuple[str, list[Path]]:
    """Writes report.md and, for each kind of run that has a table, its CSV and plots; returns
    the Markdown and the files written."""
    files = Writer(output)
    training, solves = group_runs(survey.runs, "train"), group_runs(survey.runs, "solve")
    left_out = not_included(survey)
    counts = (f"{sum(len(group.runs) for group in training)} training and "
              f"{sum(len(group.runs) for group in solves)} solve runs tabulated of "
              f"{len(survey.runs)} found")
    parts = [f"# mgnet report\n\n{counts}.\n"]
    if training:
        parts.append(training_part(training, files))
    if solves:
        parts.append(solve_part(solves, files))
    if not training and not solves:
        parts.append("No run has results to tabulate.\n")
    parts.append("## Not included\n\n" + ("\n".join(left_out) if left_out else "none") + "\n")
    report = "\n".join(parts)
    files.text("report.md", report)
    return report, files.written
