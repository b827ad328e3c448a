"""Checks made before Hydra runs a command, so that bad input costs one line, not a traceback.

Hydra reports composition errors (an unknown option or key, a malformed override) over many lines
with exit code 1; ``check_overrides`` composes the first job of the command line itself and turns
such an error into ``mgnet <command>: error: ...`` plus at most one hint line, with exit code 2.
"""

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mgnet_cli.errors import ConfigError

HYDRA_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--version",
               "--shell-completion", "-sc", "--resolve", "--package", "-p", "--run", "-r",
               "--multirun", "-m", "--config-path", "-cp", "--config-name", "-cn",
               "--config-dir", "-cd", "--experimental-rerun")


def overrides_of(argv: list[str]) -> list[str]:
    """The ``key=value`` overrides among Hydra's command-line arguments."""
    return [arg for arg in argv if not arg.startswith("-")]


ALL_JOBS_UP_TO = 256  # a sweep this small has every job checked before the first one starts


def sample_jobs(overrides: list[str]) -> list[list[str]]:
    """The jobs of a sweep to check before it starts: all of them when there are at most
    ALL_JOBS_UP_TO, else jobs that together use every value of every sweep (``a=1,2 b=3,4`` ->
    a=1 b=3, a=2 b=3, a=1 b=4), which finds any bad option without composing the whole product."""
    import itertools
    import math

    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    values = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
              if o.is_sweep_override() else [o.input_line] for o in parsed]
    if math.prod(len(choices) for choices in values) <= ALL_JOBS_UP_TO:
        return [list(job) for job in itertools.product(*values)]
    first = [choices[0] for choices in values]
    jobs = [first]
    for index, choices in enumerate(values):
        jobs += [first[:index] + [choice] + first[index + 1:] for choice in choices[1:]]
    return jobs


EXTRAS = {  # Hydra plugins that come with an extra of mgnet (pyproject.toml)
    ("hydra/sweeper", "optuna"): "optuna",
    ("hydra/launcher", "submitit"): "slurm",
}


def explain(error: Exception, command: str, overrides: list[str] = ()) -> str:
    """One line (plus a hint line) for a Hydra composition or override-parsing error."""
    from omegaconf.errors import OmegaConfBaseException

    from mgnet_cli.schema import type_error

    if isinstance(error.__cause__, OmegaConfBaseException):  # a value the schema's type refuses
        return type_error(error.__cause__)
    text = str(error)
    missing = re.search(r"Could not find '([^']+)/([^']+)'.*?Available options in '[^']+':\n"
                        r"((?:\t[^\n]*\n?)*)", text, re.S)
    if missing:
        group, option, available = missing.groups()
        extra = EXTRAS.get((group, option.split("_")[0]))
        if extra:
            return (f"{group}={option} needs an extra that is not installed\n"
                    f"  pip install \"mgnet[{extra}]\" (or, in a checkout, pip install -e \".[{extra}]\")")
        return no_such_option(group, option, [line.strip() for line in available.splitlines() if line.strip()])
    pinned = re.search(r"In '([^']+)/([^']+)': ConfigKeyError raised while composing config:\n.*?"
                       r"full_key: ([\w.]+)", text, re.S)
    if pinned:
        return pinned_elsewhere(*pinned.groups(), overrides)
    unknown = re.search(r"Could not override '([^']+)'", text)
    if unknown:
        key = unknown.group(1)
        return (f"{key}: no such key in the config\n  `mgnet {command} --cfg job` prints every key; "
                f"prefix with + to add a new one (+{key}=...)")
    if "Error parsing override" in text or "no viable alternative" in text or "missing" in text:
        first = text.splitlines()[0]
        return f"cannot parse the command line: {first}\n  overrides look like key=value or group=option"
    return text.splitlines()[0] if text else type(error).__name__


def no_such_option(group: str, option: str, choices: list[str]) -> str:
    return f"{group}={option}: no such option\n  choose one of: {', '.join(choices)}"


def pinned_elsewhere(group: str, option: str, key: str, overrides: list[str]) -> str:
    """A preset (``experiment/<option>``) sets ``key``, which the option swapped on top lacks."""
    swapped_group = key.split(".")[0]
    preset = chosen(overrides, group) or f"{group}={option}"
    if preset != f"{group}={option}":
        preset += f" (by way of {option})"
    swapped = chosen(overrides, swapped_group) or f"the {swapped_group} chosen"
    return (f"{preset} sets {key}, which {swapped} does not have: this preset cannot take {swapped} "
            f"(keep its {swapped_group}, or start from another preset; README, Presets and baselines)")


def chosen(overrides: list[str], group: str) -> str | None:
    """The last ``group=option`` of the command line, if any."""
    found = [o.lstrip("+") for o in overrides if o.lstrip("+").split("=")[0] == group]
    return found[-1] if found else None


def check_options(overrides: list[str]) -> None:
    """Every ``group=option`` names a shipped option, optional groups included: Hydra drops an
    optional group's unknown option without a word (``experiment=typo`` trained the default)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from mgnet_cli.shipped import config_dir

    for override in OverridesParser.create().parse_overrides(overrides):
        group, option = override.key_or_group, override.value()
        folder = config_dir() / group
        if (override.is_delete() or group.startswith("hydra") or not isinstance(option, str)
                or not folder.is_dir() or (folder / f"{option}.yaml").is_file()):
            continue
        raise ConfigError(no_such_option(group, option, sorted(path.stem for path in folder.glob("*.yaml"))))


def check_overrides(config_dir: Path, config_name: str, argv: list[str]) -> None:
    """Composes the config (of sample jobs of a sweep); raises ConfigError with ``explain``'s message."""
    if any(arg.split("=")[0] in HYDRA_FLAGS and arg not in ("-m", "--multirun") for arg in argv):
        return  # help and inspection flags: Hydra answers them itself
    from hydra import initialize_config_dir

    try:
        jobs = sample_jobs(overrides_of(argv))
    except Exception as error:  # Hydra's override parser
        raise ConfigError(explain(error, config_name)) from error
    swept = [index for index in range(len(jobs[0])) if len({job[index] for job in jobs}) > 1]
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        for overrides in jobs:
            try:
                check_job(config_name, overrides)
            except ConfigError as error:
                if not swept:
                    raise
                job = " ".join(overrides[index] for index in swept)
                raise ConfigError(f"{error} (in the job {job}; no job was started)") from None


def check_job(config_name: str, overrides: list[str], compose: Callable[..., Any] | None = None) -> None:
    """Composes one job (inside an initialised Hydra; ``compose``: Hydra's, or one that gives the
    same config, as tests/schema/test_schema.py's reuse of a composed base) and runs its schema's rules."""
    from omegaconf import OmegaConf

    from mgnet_cli import schema

    if compose is None:
        from hydra import compose
    check_options(overrides)
    try:
        cfg = compose(config_name, overrides=overrides)
    except Exception as error:  # Hydra's composition errors
        raise ConfigError(explain(error, config_name, overrides)) from error
    if config_name in schema.COMMANDS:  # the range rules, and keys added with +
        schema.check(schema.typed(OmegaConf.to_container(cfg), config_name), config_name)


def check_writable(argv: list[str], default: str = "outputs") -> None:
    """The folder a run would be written to must be writable (and not in use) before anything starts."""
    from mgnet_cli.storage import check_unlocked

    target = override_value(argv, "hydra.run.dir") or override_value(argv, "hydra.sweep.dir") or default
    folder = Path(target).expanduser().absolute()
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write the run folder {Path(target).expanduser().absolute()}: "
                          f"{folder} is not a writable folder\n  run from a writable folder or set hydra.run.dir=...")
    if folder == Path(target).expanduser().absolute():
        check_unlocked(folder)  # a second writer into a run folder in use
    resume = override_value(argv, "resume")
    if resume not in (None, "null", "None") and Path(resume).expanduser().exists():
        run = Path(resume).expanduser()
        run = run if run.is_dir() else run.parent
        if not os.access(run, os.W_OK | os.X_OK):
            raise ConfigError(f"resume={resume}: {run} is not writable (a read-only mount?): copy "
                              "the run folder somewhere writable and resume that")


def override_value(argv: list[str], key: str) -> str | None:
    """The last value the command line gives ``key`` (Hydra's quotes removed)."""
    values = [arg.partition("=")[2] for arg in overrides_of(argv) if arg.partition("=")[0] == key]
    if not values:
        return None
    value = values[-1]
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    return value


def check_resume(argv: list[str]) -> None:
    """``resume=``: the run or checkpoint exists, is not being written, is a training checkpoint
    with a config the schemas accept, and the other overrides may change on a resume."""
    from mgnet_cli.cli.resume import checkpoint_path, refused_overrides, resume_config
    from mgnet_cli.storage import check_unlocked
    from mgnet_cli.train.checkpoint import load_checkpoint

    value = override_value(argv, "resume")
    if value in (None, "null", "None"):
        return
    target = Path(value).expanduser()
    if not target.exists():
        raise ConfigError(f"resume={value}: {target} does not exist (give a run folder or a checkpoint)")
    overrides = [arg for arg in overrides_of(argv) if not arg.startswith("resume=")]
    refused_overrides(overrides)
    check_unlocked(target if target.is_dir() else target.parent)
    path = checkpoint_path(target)
    resume_config(load_checkpoint(path), path, overrides)
