"""``mgnet report`` on damaged run folders: the good runs are reported, each bad one is listed with
a reason naming the file, nothing from a file runs, and a bad command line is one line, exit 2."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mgnet_cli.cli.sweep import COLUMNS
from tests.helpers import cli, copy_run


@pytest.fixture(scope="module")
def real_run(tiny_run, tmp_path_factory) -> Path:
    """One real training run folder, copied by each test."""
    return copy_run(tiny_run, tmp_path_factory.mktemp("real") / "run")


def edit_results(**changes: object) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        results = json.loads((folder / "results.json").read_text())
        for key, value in changes.items():
            if value is KeyError:
                del results[key]
            else:
                results[key] = value
        (folder / "results.json").write_text(json.dumps(results))
    return damage


def write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return damage


def truncate(name: str) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[:len(data) // 2])
    return damage


RESULTS = "results.json"
OVERRIDES = ".hydra/overrides.yaml"
DAMAGED_RUNS = {  # what was done to the run folder -> the reason the report must give
    "binary": (write(RESULTS, b"\x89PNG\r\n\x1a\n\x00\xff\xfe"), "results.json: not UTF-8 text"),
    "array": (write(RESULTS, "[1, 2]"), "results.json holds an array, not an object"),
    "number": (write(RESULTS, "42"), "results.json holds a number, not an object"),
    "null": (write(RESULTS, "null"), "results.json holds null, not an object"),
    "string": (write(RESULTS, '"done"'), "results.json holds a string, not an object"),
    "empty": (write(RESULTS, ""), "results.json: not valid JSON"),
    "truncated": (truncate(RESULTS), "results.json: not valid JSON"),
    "deeply nested": (write(RESULTS, "[" * 100_000), "results.json: not valid JSON"),
    "accuracy text": (edit_results(best_test_acc="abc"), 'results.json: best_test_acc is "abc": not a number'),
    "accuracy NaN": (edit_results(final_test_acc=float("nan")), "final_test_acc is NaN: not a finite number"),
    "no accuracy": (edit_results(best_test_acc=KeyError), "results.json: no best_test_acc"),
    "parameters float": (edit_results(parameters=1.5), "parameters is 1.5: not a whole number"),
    "parameters bool": (edit_results(parameters=True), "parameters is true: not a whole number"),
    "history object": (edit_results(history={"epoch": 1}), "history is {\"epoch\": 1}: not an array of epoch"),
    "history numbers": (edit_results(history=[1, 2]), "(item 0 is a number)"),
    "history no acc": (edit_results(history=[{"epoch": 1}]), "(item 0 has test_acc null)"),
    "speed text": (edit_results(train_images_per_s="fast"), 'train_images_per_s is "fast": not a number'),
    "status number": (edit_results(status=5), "results.json: status is 5: not a string"),
    "command unknown": (edit_results(command="eval"), 'command is "eval", not one of train, solve'),
    "solve factor text": (edit_results(command="solve", convergence_factor="fast"),
                          'convergence_factor is "fast": not a number'),
    "overrides binary": (write(OVERRIDES, b"\xff\xfe- seed=0"), ".hydra/overrides.yaml: not UTF-8 text"),
    "overrides corrupt": (write(OVERRIDES, "- a=1\n  b: [\n"), ".hydra/overrides.yaml: not valid YAML"),
    "overrides mapping": (write(OVERRIDES, "seed: 0\n"), "holds a mapping, not a list of key=value"),
    "overrides numbers": (write(OVERRIDES, "- 1\n- 2\n"), "holds a list with other things than strings"),
    "overrides code": (write(OVERRIDES, "!!python/object/apply:os.system ['touch PWNED']\n"),
                       ".hydra/overrides.yaml: not valid YAML"),
    "no results": (lambda folder: (folder / RESULTS).unlink(), "missing: "),
}


DAMAGED_SUMMARIES = {  # summary.csv's content -> the reason the report must give
    "truncated": (",".join(COLUMNS) + "\n0,seed=0,completed,0.5", "summary.csv: line 2 has 4 fields"),
    "NUL bytes": (",".join(COLUMNS) + "\n0,se\0ed", "summary.csv: line 2 has 2 fields"),
    "huge field": (",".join(COLUMNS) + "\n0," + "x" * 200_000, "summary.csv: not CSV"),
    "binary": (b"\xff\xd8\xff\xe0garbage", "summary.csv: not UTF-8 text"),
    "no header": ("1,2,3\n", "summary.csv: no header with a folder column"),
}


def report(*folders: Path, cwd: Path) -> tuple[str, str, int]:
    result = cli("report", *map(str, folders), cwd=cwd, check=False)
    return result.stdout, result.stderr, result.returncode


@pytest.fixture(scope="module")
def damaged(real_run, tmp_path_factory) -> tuple[Path, str, str, int]:
    """One tree with a good run, every damaged run and every damaged sweep summary, and what one
    ``mgnet report`` of it printed: (tree, stdout, stderr, exit code)."""
    tree = tmp_path_factory.mktemp("damaged")
    shutil.copytree(real_run, tree / "good")
    for case, (damage, _) in DAMAGED_RUNS.items():
        shutil.copytree(real_run, tree / "runs" / case)
        damage(tree / "runs" / case)
    for case, (content, _) in DAMAGED_SUMMARIES.items():
        shutil.copytree(real_run, tree / "sweeps" / case / "0")
        write("summary.csv", content)(tree / "sweeps" / case)
    return tree, *report(tree, cwd=tree)


def test_the_good_runs_are_reported_and_nothing_else(damaged):
    tree, out, err, code = damaged
    assert code == 0 and err == "" and "Traceback" not in out
    runs = 1 + len(DAMAGED_SUMMARIES)  # the sweeps' own runs are intact
    assert f"{runs} training and 0 solve runs tabulated of {runs + len(DAMAGED_RUNS)} found" in out
    assert out.split("\nwritten: ")[0].strip() == (tree / "report.md").read_text().strip()
    assert not (tree / "PWNED").exists()


def listed(out: str, folder: Path) -> list[str]:
    """The lines of the report's "not included" part about ``folder``."""
    return [line for line in out.split("## Not included")[1].splitlines() if f" {folder} — " in line]


@pytest.mark.parametrize("case", DAMAGED_RUNS)
def test_a_damaged_run_is_listed_with_its_reason(case, damaged):
    tree, out, _, _ = damaged
    lines = listed(out, tree / "runs" / case)
    assert len(lines) == 1 and DAMAGED_RUNS[case][1] in lines[0], lines


@pytest.mark.parametrize("case", DAMAGED_SUMMARIES)
def test_a_damaged_summary_is_named_and_its_runs_still_count(case, damaged):
    tree, out, _, _ = damaged
    folder = tree / "sweeps" / case
    lines = listed(out, folder)
    assert len(lines) == 1 and lines[0].startswith(f"- not used: {folder} — {DAMAGED_SUMMARIES[case][1]}")
    assert not listed(out, folder / "0")  # the sweep's run is tabulated


def test_a_folder_without_runs_beside_one_with_runs_is_named(real_run, tmp_path):
    shutil.copytree(real_run, tmp_path / "run")
    (tmp_path / "empty").mkdir()
    out, err, code = report(tmp_path / "run", tmp_path / "empty", cwd=tmp_path)
    assert code == 0 and f"- not used: {tmp_path / 'empty'} — no run folders" in out


BAD_COMMAND_LINES = {  # arguments (folders made below tmp_path) -> what the one line must say
    "missing folder": (["nowhere"], "nowhere does not exist"),
    "a file as folder": (["file.txt"], "file.txt is a file, not a run or sweep folder"),
    "no runs at all": (["empty"], "no runs (folders with results.json or .hydra/) under empty"),
    "output is a file": (["run", "--output", "file.txt"],
                         "cannot write the report into file.txt: it is a file"),
    "output under a file": (["run", "--output", "file.txt/report"],
                            "cannot write the report into file.txt/report"),
    "no folder": ([], "the following arguments are required: folders"),
    "unknown option": (["run", "--colour"], "unrecognized arguments: --colour"),
}


@pytest.mark.parametrize("case", BAD_COMMAND_LINES)
def test_a_bad_command_line_is_one_line_and_exit_2(case, real_run, tmp_path):
    shutil.copytree(real_run, tmp_path / "run")
    (tmp_path / "file.txt").write_text("not a folder")
    (tmp_path / "empty").mkdir()
    arguments, message = BAD_COMMAND_LINES[case]
    result = cli("report", *arguments, cwd=tmp_path, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("mgnet report: error: ") and len(result.stderr.splitlines()) == 1
    assert message in result.stderr
    assert not (tmp_path / "run" / "report.md").exists() and not (tmp_path / "report").exists()
