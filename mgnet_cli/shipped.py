"""The YAML configs mgnet ships: where they are, and the code their ``_target_`` keys name.

A schema whose options are plain (no keys of their own) lists as the code a config may call
exactly what the shipped options extending it name, so that a new option of such a group is one
class and one YAML file; nothing read from a checkpoint or a results file adds to that list.
"""

from functools import cache
from importlib import resources
from pathlib import Path


def config_dir() -> Path:
    """The folder of YAML configs: ``mgnet_cli/configs`` when installed, ``configs/`` in a checkout."""
    packaged = Path(str(resources.files("mgnet_cli"))) / "configs"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[1] / "configs"


@cache
def targets(group: str, schema: str) -> tuple[str, ...]:
    """The ``_target_`` of every shipped ``configs/<group>/*.yaml`` that extends
    ``/schema/<group>/<schema>``, in file-name order."""
    import yaml

    named = []
    for path in sorted((config_dir() / group).glob("*.yaml")):
        option = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if f"/schema/{group}/{schema}@_here_" in option.get("defaults", []) and "_target_" in option:
            named.append(option["_target_"])
    return tuple(named)


class Targets:
    """A schema's ``TARGETS`` (``TARGETS = Targets(group, schema)``, unannotated, so that dataclasses
    leave it alone): ``targets(group, schema)``, read when first asked for, so that importing a
    schema reads no file."""

    def __init__(self, group: str, schema: str) -> None:
        self.group, self.schema = group, schema

    def __get__(self, instance: object, owner: type | None = None) -> tuple[str, ...]:
        return targets(self.group, self.schema)


@cache
def interpolations(groups: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """Dotted key -> the ``${...}`` values the shipped configs hold there (``scheduler.epochs`` ->
    ``${trainer.epochs}``), over the commands' YAML files, the presets and the options of ``groups``:
    the only interpolations a config read from a file may hold, each at its own key."""
    import yaml

    found: dict[str, set[str]] = {}

    def visit(prefix: str, node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key not in ("defaults", "hydra"):
                    visit(f"{prefix}{key}.", value)
        elif isinstance(node, str) and "${" in node:
            found.setdefault(prefix[:-1], set()).add(node)

    root = config_dir()
    files = [("", path) for path in [*root.glob("*.yaml"), *(root / "experiment").glob("*.yaml")]]
    files += [(group.replace("/", ".") + ".", path) for group in groups for path in (root / group).glob("*.yaml")]
    for prefix, path in sorted(files):
        visit(prefix, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return {key: frozenset(values) for key, values in found.items()}
