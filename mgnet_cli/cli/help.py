"""``mgnet <command> --help``: the command's own groups (from its YAML's defaults list) and keys
(from its schema: each key's default and one-line help, ``rules.setting``).

Hydra's help lists every group under the config folder (training's for ``mgnet solve``, the
schemas'); this one lists the command's own. It imports no torch: it is read in a tenth of a second.
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


def key_lines(command: str, text: str) -> list[str]:
    """``key=default  help`` for each key of the command's schema; the default is what the command
    composes: the schema's, or the YAML's own value where it still states one."""
    stated = OmegaConf.to_container(OmegaConf.create(text))  # unresolved: ${...} shown as written
    lines = []
    for key, default, help, field in keys(schema.COMMANDS[command]):
        value = stated_value(stated, key, default)
        if isinstance(value, list):
            value = "[" + ",".join(rules.shown(item) for item in value) + "]"
        shown = f"{key}={rules.shown(value)}"
        words = " ".join(part for part in (help, choices(field)) if part)
        lines += textwrap.wrap(f"{shown:<{KEY_WIDTH}}  {words}", WIDTH, initial_indent="  ",
                               subsequent_indent=" " * (KEY_WIDTH + 4), break_on_hyphens=False)
    return lines


def sweeps(text: str) -> bool:
    """Whether a command's YAML records sweeps (``-m``): train's and solve's; info and eval do not."""
    return "mgnet_cli.cli.sweep.SweepRecorder" in text


def help_text(command: str) -> str:
    text = (config_dir() / f"{command}.yaml").read_text()
    chosen = groups(text)
    sweep = " [-m]" if sweeps(text) else ""
    lines = [f"usage: mgnet {command} {'[group=option ...] ' if chosen else ''}[key=value ...]{sweep}", "",
             f"{COMMANDS[command]}.", ""]
    if chosen:
        lines.append("groups (group=option; * the default):")
        width = max(len(group) for group, _ in chosen)
        for group, default in chosen:
            options = sorted(path.stem for path in (config_dir() / group).glob("*.yaml"))
            shown = [f"{option}*" if option == default else option for option in options]
            lines.append(f"  {group:<{width}}  {', '.join(shown)}")
        lines.append("")
    lines.append("keys (key=default, then its help):")
    lines += key_lines(command, text)
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


def print_help(command: str) -> None:
    print(help_text(command))


def wants_help(argv: list[str]) -> bool:
    return any(arg in ("--help", "-h") for arg in argv)
