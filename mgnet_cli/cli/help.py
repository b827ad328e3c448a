"""``mgnet <command> --help``: the command's own groups (from its YAML's defaults list) and keys
(from its schema: each key's default and one-line help, ``rules.setting``).

Hydra's help lists every group under the config folder (training's for ``mgnet solve``, the
schemas'); this one lists the command's own. It imports no torch: it is read in a tenth of a second.
With overrides (``mgnet solve problem=diffusion --help``) it composes them as the command would
(Hydra, about a second) and shows the defaults and group options that command line gets, each value
that differs from the schema's default marked with it, and then the keys of each chosen option
(``problem.n``, ``problem.amg.*`` for ``problem=matrix``, ...) from that option's schema.
"""

import dataclasses
import re
import textwrap
import typing
from enum import Enum
from typing import Any

from omegaconf import OmegaConf

from mgnet_cli import schema
from mgnet_cli.cli import COMMANDS, config_dir
from mgnet_cli.errors import ConfigError
from mgnet_cli.schema import rules

GROUP_DEFAULT = re.compile(r"^\s*- (optional )?([\w/]+): (\S+)")  # `- dataset: cifar10` in a defaults list
KEY_WIDTH = 24  # the key=default column; a longer one pushes its help along
WIDTH = 100  # help lines wrap here


def groups(text: str) -> list[tuple[str, str]]:
    """(group, default option) of a primary config's defaults list (not schemas or Hydra's own)."""
    found = []
    for line in text.split("_self_")[0].splitlines():
        match = GROUP_DEFAULT.match(line)
        if match and not match.group(2).startswith(("hydra", "override")) and "@" not in line:
            found.append((match.group(2), match.group(3)))
    return found


def keys(owner: Any, prefix: str = "") -> list[tuple[str, Any, str, dataclasses.Field]]:
    """(dotted key, default, help, field) of each key of the schema ``owner`` (a class or a default
    instance): a nested schema's keys dotted under its name, group fields left to the groups."""
    found = []
    for field in dataclasses.fields(owner):
        if "group" in field.metadata:
            continue
        if isinstance(owner, type):
            default = field.default_factory() if field.default is dataclasses.MISSING else field.default
        else:
            default = getattr(owner, field.name)
        if dataclasses.is_dataclass(default):
            found += keys(default, f"{prefix}{field.name}.")
        else:
            owner_class = owner if isinstance(owner, type) else type(owner)
            found.append((f"{prefix}{field.name}", default, rules.help_of(owner_class, field.name), field))
    return found


def choices(field: dataclasses.Field) -> str:
    """``[one of a, b]`` for a choice key (``each of`` for a list of choices), else nothing."""
    kind, many = rules.declared(field), ""
    if typing.get_origin(kind) is list:
        kind, many = next(iter(typing.get_args(kind)), kind), "each "
    if isinstance(kind, type) and issubclass(kind, Enum):
        return f"[{many or 'one '}of {rules.choices(kind)}]"
    return ""


def stated_value(stated: dict, key: str, default: Any) -> Any:
    """The value a YAML states at a dotted key, else ``default``."""
    node = stated
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def composed(command: str, overrides: list[str]) -> tuple[dict, dict[str, str | None], list[str]]:
    """The config ``mgnet <command> <overrides>`` composes (unresolved: ${...} as written, without
    ``hydra``), its group choices and the overrides composed (a sweep's first job). A bad override
    raises ConfigError (one line: the command's own check)."""
    from hydra import compose, initialize_config_dir

    from mgnet_cli.cli import register_configs
    from mgnet_cli.cli.preflight import check_overrides, sample_jobs

    register_configs()
    check_overrides(config_dir(), command, overrides)
    job = sample_jobs(overrides)[0]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(command, overrides=job, return_hydra_config=True)
    chosen = OmegaConf.to_container(cfg.hydra.runtime.choices)
    stated = OmegaConf.to_container(cfg, resolve=False)
    stated.pop("hydra")
    return stated, chosen, job


def shown_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(rules.shown(item) for item in value) + "]"
    return rules.shown(value)


def key_lines(command: str, stated: dict) -> list[str]:
    """``key=default  help`` for each key of the command's schema; the default is what the command
    composes (``stated``: its YAML, or the composed config): the schema's, or the value stated
    there, marked ``(schema default: ...)`` where it differs."""
    lines = []
    for key, default, help, field in keys(schema.COMMANDS[command]):
        lines += key_line(key, stated_value(stated, key, default), default, help, field)
    return lines


def key_line(key: str, value: Any, default: Any, help: str, field: dataclasses.Field) -> list[str]:
    """``key=value  help [choices] (schema default: ...)``, wrapped."""
    shown = f"{key}={shown_value(value)}"
    differs = f"(schema default: {shown_value(default)})" if shown_value(value) != shown_value(default) else ""
    words = " ".join(part for part in (help, choices(field), differs) if part)
    return textwrap.wrap(f"{shown:<{KEY_WIDTH}}  {words}", WIDTH, initial_indent="  ",
                         subsequent_indent=" " * (KEY_WIDTH + 4), break_on_hyphens=False)


def option_key_lines(stated: dict, chosen: list[tuple[str, str]]) -> list[str]:
    """``group.key=value  help`` for the keys of each chosen group option (its schema, the one the
    composed node selects), as ``stated`` (the composed config) has them; ``_target_``-style keys left
    out. Only where the command line was composed: without it, the groups' nodes are not at hand."""
    lines = []
    for group, _ in chosen:
        node = schema.node_at(stated, group)
        if not isinstance(node, dict):
            continue
        try:
            owner = schema.schema_for(group, node, "")
        except ConfigError:  # an option the command's own check refuses says so when it runs
            continue
        prefix = group.replace("/", ".") + "."
        for key, default, help, field in keys(owner):
            if not key.split(".")[-1].startswith("_"):
                lines += key_line(prefix + key, stated_value(node, key, default), default, help, field)
    return lines


def sweeps(text: str) -> bool:
    """Whether a command's YAML records sweeps (``-m``): train's and solve's; info and eval do not."""
    return "mgnet_cli.cli.sweep.SweepRecorder" in text


def help_text(command: str, overrides: list[str] = ()) -> str:
    """The help of ``mgnet <command>``; with ``overrides``, the defaults that command line composes."""
    text = (config_dir() / f"{command}.yaml").read_text()
    chosen = groups(text)
    given = ""
    if overrides:
        stated, runtime, job = composed(command, list(overrides))
        chosen = [(group, runtime.get(group) or default) for group, default in chosen]
        first = "" if job == list(overrides) else ", the sweep's first job,"
        given = f" as `mgnet {command} {' '.join(job)}`{first} composes it"
    else:
        stated = OmegaConf.to_container(OmegaConf.create(text))  # unresolved: ${...} shown as written
    sweep = " [-m]" if sweeps(text) else ""
    lines = [f"usage: mgnet {command} {'[group=option ...] ' if chosen else ''}[key=value ...]{sweep}", "",
             f"{COMMANDS[command]}.", ""]
    if chosen:
        lines.append(f"groups (group=option; * the default{given}):")
        width = max(len(group) for group, _ in chosen)
        for group, default in chosen:
            options = sorted(path.stem for path in (config_dir() / group).glob("*.yaml"))
            shown = [f"{option}*" if option == default else option for option in options]
            lines.append(f"  {group:<{width}}  {', '.join(shown)}")
        lines.append("")
    lines.append(f"keys (key=default{given}, then its help):")
    lines += key_lines(command, stated)
    if overrides and chosen:
        named = ", ".join(f"{group}={option}" for group, option in chosen if option != "null")
        lines += ["", *textwrap.wrap(f"keys of the chosen options ({named}):", WIDTH, break_on_hyphens=False)]
        lines += option_key_lines(stated, chosen)
    lines += ["", f"`mgnet {command} --cfg job` prints every key of the composed config (README's \"Config groups\"",
              "explains them; an option's YAML file, configs/<group>/<option>.yaml, says what it changes",
              "from the defaults); `--hydra-help` shows Hydra's flags."]
    return "\n".join(lines)


def group_choices(command: str, word: str) -> list[str] | None:
    """Completions of ``group=prefix`` for one of ``command``'s config groups, read from the configs
    folder (what Hydra answers, in a tenth of a second instead of seconds: no torch import); None
    for any other word, which Hydra completes."""
    group, equals, prefix = word.partition("=")
    if not equals or group not in dict(groups((config_dir() / f"{command}.yaml").read_text())):
        return None
    options = sorted(path.stem for path in (config_dir() / group).glob("*.yaml"))
    return [f"{group}={option}" for option in options if option.startswith(prefix)]


def print_help(command: str, argv: list[str] = ()) -> None:
    """``argv``: the command line around ``--help``; its overrides are composed (a bad one: one line, exit 2)."""
    from mgnet_cli.cli.preflight import overrides_of
    from mgnet_cli.errors import MgnetError

    try:
        print(help_text(command, overrides_of(list(argv))))
    except MgnetError as error:
        from mgnet_cli.cli.app import fail

        fail(command, error)


def wants_help(argv: list[str]) -> bool:
    return any(arg in ("--help", "-h") for arg in argv)
