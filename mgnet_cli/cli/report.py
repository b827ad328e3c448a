"""``mgnet report <folder>...``: tables over training and solve runs and sweeps, with CSV, Markdown and plots.

Damaged run files are listed in the report with their reason; a bad command line (a folder that
does not exist, a file given as a folder, an output folder that cannot be written) is one line
``mgnet report: error: …`` and exit code 2.
"""

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from mgnet_cli.report.document import write_report
from mgnet_cli.report.runs import find_runs
from mgnet_cli.storage import WriteError

PROGRAM = "mgnet report"


def fail(message: str) -> NoReturn:
    """README's one line for bad input, and exit code 2."""
    print(f"{PROGRAM}: error: {message}", file=sys.stderr)
    sys.exit(2)


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block before them)."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (mgnet report --help lists the options)")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = Parser(prog=PROGRAM, description=__doc__.split("\n")[0].split(":", 1)[1].strip())
    parser.add_argument("folders", nargs="+", type=Path, help="run folders and/or sweep folders")
    parser.add_argument("--output", type=Path, default=None,
                        help="where report.md, the CSV tables and the PNGs go (default: the folder "
                             "given, or ./report with several)")
    return parser.parse_args(argv)


def unwritable(output: Path) -> str:
    """Why the report cannot be written into ``output`` (made if need be), or "" when it can."""
    if output.exists() and not output.is_dir():
        return f"cannot write the report into {output}: it is a file (choose a folder with --output)"
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output):
            pass
    except OSError as error:
        return (f"cannot write the report into {output}: {error.strerror or error} "
                "(choose another folder with --output)")
    return ""


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    arguments = parse(argv)
    try:
        survey = find_runs(arguments.folders)
    except OSError as error:
        fail(str(error))
    if not survey.runs:
        fail(f"no runs (folders with results.json or .hydra/) under "
             f"{' '.join(map(str, arguments.folders))}")
    output = arguments.output or (arguments.folders[0] if len(arguments.folders) == 1 else Path("report"))
    problem = unwritable(output)
    if problem:
        fail(problem)
    try:
        report, written = write_report(survey, output)
    except WriteError as error:  # it names the file; what was written before it is complete
        fail(str(error))
    except OSError as error:
        fail(f"cannot write the report into {output}: {error.strerror or error}")
    print(report)
    print("written: " + ", ".join(map(str, written)))
