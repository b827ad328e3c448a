"""What a run's ``results.json`` must hold before the report uses it: each key's JSON type.

Every value is checked before any is used, so a damaged or hand-edited file becomes one line in
the report's "not included" list instead of a traceback. The reasons name the file and the key.
"""

import json
import math
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], str]  # "" when the value is fine, else what is wrong with it


def describe(value: Any, width: int = 40) -> str:
    """A JSON value as the file spells it, cut to ``width`` characters."""
    text = json.dumps(value)
    return text if len(text) <= width else text[:width - 1] + "…"


def json_kind(value: Any) -> str:
    """The JSON name of a value's type: an object, an array, a string, a number, a boolean, null."""
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def number(value: Any) -> str:
    """Any JSON number (NaN and infinities too: a diverged solve reports them)."""
    return "" if isinstance(value, int | float) and not isinstance(value, bool) else "not a number"


def finite(value: Any) -> str:
    """A finite JSON number."""
    return number(value) or ("" if math.isfinite(value) else "not a finite number")


def count(value: Any) -> str:
    """A whole number, zero or more."""
    whole = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return "" if whole else "not a whole number ≥ 0"


def text(value: Any) -> str:
    """A JSON string."""
    return "" if isinstance(value, str) else "not a string"


def numbers(value: Any) -> str:
    """An array of numbers (a residual history)."""
    if not isinstance(value, list):
        return "not an array of numbers"
    wrong = next((index for index, item in enumerate(value) if number(item)), None)
    return "" if wrong is None else f"not an array of numbers (item {wrong} is {describe(value[wrong])})"


def history(value: Any) -> str:
    """An array of objects, one per epoch, each with a finite ``test_acc``."""
    if not isinstance(value, list):
        return "not an array of epoch objects"
    for index, epoch in enumerate(value):
        if not isinstance(epoch, dict):
            return f"not an array of epoch objects (item {index} is {json_kind(epoch)})"
        if finite(epoch.get("test_acc")):
            accuracy = describe(epoch.get("test_acc"))
            return f"not an array of epoch objects (item {index} has test_acc {accuracy})"
    return ""


TRAIN_REQUIRED: dict[str, Check] = {  # what a completed training run's row is made of
    "best_test_acc": finite, "final_test_acc": finite, "parameters": count, "epochs": count,
    "history": history,
}
TRAIN_OPTIONAL: dict[str, Check] = {"wall_time_s": finite, "train_images_per_s": finite}
SOLVE_OPTIONAL: dict[str, Check] = {  # shown where present: `mgnet solve` may add or drop keys
    "n": count, "cycles": count, "convergence_factor": number, "final_relative_residual": number,
    "setup_time_s": number, "solve_time_s": number, "time_per_cycle_s": number,
    "relative_residuals": numbers,
}
COMMANDS = ("train", "solve")
UNFINISHED = ("failed", "running", "interrupted")  # statuses a run records before or instead of its results


def finished(command: str, status: str) -> bool:
    """Whether a run of ``command`` that recorded ``status`` has results to tabulate."""
    return status == "completed" if command == "train" else status not in UNFINISHED


def key_problem(results: dict[str, Any], checks: dict[str, Check], required: bool) -> str:
    """The first key of ``checks`` that is missing (when ``required``) or of the wrong type."""
    for key, check in checks.items():
        if key not in results or (results[key] is None and not required):
            if required:
                return f"results.json: no {key}"
            continue
        wrong = check(results[key])
        if wrong:
            return f"results.json: {key} is {describe(results[key])}: {wrong}"
    return ""


def results_problem(results: Any) -> str:
    """Why ``results`` (a parsed results.json) cannot be tabulated, or "" when it can."""
    if not isinstance(results, dict):
        return f"results.json holds {json_kind(results)}, not an object"
    command = results.get("command", "train")
    if command not in COMMANDS:
        return f"results.json: command is {describe(command)}, not one of {', '.join(COMMANDS)}"
    header = key_problem(results, {"status": text, "error": text}, required=False)
    if header or not finished(command, results.get("status", "completed")):
        return header  # an unfinished run is listed with its status; its metrics are not used
    if command == "solve":
        return key_problem(results, SOLVE_OPTIONAL, required=False)
    return (key_problem(results, TRAIN_REQUIRED, required=True)
            or key_problem(results, TRAIN_OPTIONAL, required=False))
