"""``mgnet <command> --help``: the command's own groups and keys, with their YAML comments.

Hydra's help lists every group under the config folder (training's for ``mgnet solve``, the
schemas'); this one reads the command's own defaults list and keys from its YAML file.
"""

import re

from mgnet_cli.cli import COMMANDS, config_dir

GROUP_DEFAULT = re.compile(r"^\s*- (optional )?([\w/]+): (\S+)")  # `- dataset: cifar10` in a defaults list


def groups(text: str) -> list[tuple[str, str]]:
    """(group, default option) of a primary config's defaults list (not schemas or Hydra's own)."""
    found = []
    for line in text.split("_self_")[0].splitlines():
        match = GROUP_DEFAULT.match(line)
        if match and not match.group(2).startswith(("hydra", "override")) and "@" not in line:
            found.append((match.group(2), match.group(3)))
    return found


def own_keys(text: str) -> list[str]:
    """The YAML's lines below its defaults list and above its ``hydra:`` block, comments kept."""
    lines, skipping = [], False
    for line in text.splitlines():
        if re.match(r"^(defaults|hydra):", line):
            skipping = True
            continue
        if skipping and (not line.strip() or line.startswith((" ", "#"))):
            continue
        skipping = False
        if not line.startswith("#"):
            lines.append(line)
    return [line for line in lines if line.strip()]


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
    lines.append(f"keys (configs/{command}.yaml):")
    lines += [f"  {line}" for line in own_keys(text)]
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
