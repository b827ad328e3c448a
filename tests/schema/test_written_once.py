"""Each value written once: a shipped YAML states only what differs from its schema, and every key a
command takes has its one-line help in that schema (``rules.setting``), which ``--help`` prints.

A YAML's base is what it extends: ``/schema/<group>/<name>@_here_`` (the schema's defaults) and the
sibling options its defaults list names (``trainer/fast`` extends ``default``); an option in the
``_global_`` package extends its schema at its group (``@problem``) and lays the rest of its keys over
the defaults of the command that selects its group (``problem/diffusion`` sets ``solver.*``). A key whose literal
value equals the base's is a restatement: a second copy of the default that can drift from it.
``${...}`` values and the key that selects the schema (``_target_``, a problem's ``kind``) are not.
"""

import ast
import dataclasses
import inspect
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import hydra.utils
import pytest
import yaml
from omegaconf import OmegaConf

from mgnet_cli import schema
from mgnet_cli.cli import config_dir
from mgnet_cli.schema import rules
from mgnet_cli.schema.train import StepDecayConfig

CONFIGS = config_dir()
LAYERED = {  # folders whose options are laid over other groups' values, not over one schema
    "experiment": "a preset pins the paper's values whatever the defaults beneath it become, and the "
                  "keys it sets are what refuses another model family on it",
    "tiny": "trainer=smoke's shrunk model, laid over the model option (and over a preset's widths)",
}
HYDRAS_OWN = {"hydra": "Hydra's logging configs", "search": "Hydra's sweeper settings"}  # no mgnet schema
EXTENDS = re.compile(r"/schema/(?:(?P<group>[\w/]+)/)?(?P<name>\w+)@(?P<package>_here_|[\w.]+)")
GLOBAL = "# @package _global_"


def shipped_files() -> list[str]:
    """The command files and every option of every group with a schema, relative to configs/."""
    files = [path.name for path in CONFIGS.glob("*.yaml")]
    files += [str(path.relative_to(CONFIGS)) for group in schema.GROUPS for path in (CONFIGS / group).glob("*.yaml")]
    return sorted(files)


def literal(path: Path) -> dict[str, Any]:
    """A YAML's own values: what it states below its defaults list, Hydra's block left out."""
    values = yaml.safe_load(path.read_text()) or {}
    return {key: value for key, value in values.items() if key not in ("defaults", "hydra")}


def schema_defaults(group: str | None, name: str) -> tuple[type, dict[str, Any]]:
    owner = schema.GROUPS[group][name] if group else schema.COMMANDS[name]
    return owner, OmegaConf.to_container(OmegaConf.structured(owner), enum_to_str=True)


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        result[key] = merged(base[key], value) if both else value
    return result


def nested(values: dict[str, Any], package: str) -> dict[str, Any]:
    """``values`` placed at the dotted ``package`` ("_here_": where they are)."""
    for part in reversed(package.split(".") if package != "_here_" else []):
        values = {part: values}
    return values


def command_defaults(group: str) -> dict[str, Any]:
    """The defaults of the command whose YAML selects ``group`` (what a ``_global_`` option of it
    sets keys over); empty if none does."""
    for name in schema.COMMANDS:
        entries = (yaml.safe_load((CONFIGS / f"{name}.yaml").read_text()) or {}).get("defaults", [])
        if any(isinstance(entry, dict) and group in entry for entry in entries):
            return schema_defaults(None, name)[1]
    return {}


def base_of(path: Path) -> tuple[type | None, dict[str, Any], str]:
    """(the schema a YAML extends, the values it would have if it stated nothing, the package of its
    own values: "_here_", or its group's key for a ``_global_`` option)."""
    owner, base, package = None, {}, "_here_"
    if GLOBAL in path.read_text().splitlines():
        base = command_defaults(str(path.parent.relative_to(CONFIGS)))
    for entry in (yaml.safe_load(path.read_text()) or {}).get("defaults", []):
        if not isinstance(entry, str) or entry == "_self_":
            continue  # a group's default option (`dataset: cifar10`) or Hydra's own: not a key's value
        if match := EXTENDS.fullmatch(entry):
            owner, values = schema_defaults(match["group"], match["name"])
            package, values = match["package"], nested(values, match["package"])
        else:  # a sibling option of the same group
            sibling = path.with_name(f"{entry}.yaml")
            owner, values, package = base_of(sibling)
            values = merged(values, literal(sibling))
        base = merged(base, values)
    return owner, base, package


def same(value: Any, default: Any) -> bool:
    """Equal as values of one key: ``0`` is not ``false``, ``1.0`` is ``1``."""
    if isinstance(value, bool) or isinstance(default, bool):
        return value is default
    return value == default


def restatements(stated: dict[str, Any], base: dict[str, Any], prefix: str = "") -> list[str]:
    """``key=value`` for each value of ``stated`` that ``base`` holds already."""
    found = []
    for key, value in stated.items():
        if key not in base or (isinstance(value, str) and "${" in value):
            continue
        if isinstance(value, dict) and isinstance(base[key], dict):
            found += restatements(value, base[key], f"{prefix}{key}.")
        elif same(value, base[key]):
            found.append(f"{prefix}{key}={rules.shown(value)}")
    return found


@pytest.mark.parametrize("relative", shipped_files())
def test_no_shipped_yaml_restates_a_default_of_its_schema(relative):
    path = CONFIGS / relative
    owner, base, package = base_of(path)
    assert owner is not None, f"{relative} extends no schema"
    stated = literal(path)
    own = stated if package == "_here_" else stated.get(package, {})
    own.pop(getattr(owner, "SELECTED_BY", "_target_"), None)  # picks the schema: not a restatement
    assert restatements(stated, base) == [], f"{relative} restates its schema's defaults"


def test_every_yaml_is_checked_or_left_out_with_a_reason():
    checked = set(shipped_files())
    for path in CONFIGS.rglob("*.yaml"):
        relative = str(path.relative_to(CONFIGS))
        top = relative.split("/")[0]
        assert relative in checked or top in LAYERED or top in HYDRAS_OWN, relative


def test_a_restatement_is_found():
    """The check itself: a trainer option that restates the schema's epochs (300) is named."""
    base = base_of(CONFIGS / "trainer" / "fast.yaml")[1]
    assert restatements({"epochs": 300, "compile": True, "precision": "bf16"}, base) == ["epochs=300"]
    assert restatements({"compile": False}, base) == ["compile=false"]  # as default.yaml (the schema) has it
    assert restatements({"deterministic": 0, "scheduler": {"epochs": "${trainer.epochs}"}}, base) == []
    over_solve = base_of(CONFIGS / "problem" / "diffusion.yaml")[1]  # _global_: its schema's keys and solve's
    assert restatements({"problem": {"n": 255, "sigma": 2.0}, "solver": {"cycle": "v", "krylov": "cg"}},
                        over_solve) == ["problem.n=255", "solver.cycle=v"]


def reachable(owner: type, prefix: str) -> list[tuple[str, type, dataclasses.Field]]:
    """(dotted key, its schema, field) of each key a command's schema reaches: its own, its nested
    schemas' and those of every schema of its groups."""
    found = []
    for field in dataclasses.fields(owner):
        key = f"{prefix}{field.name}"
        if "group" in field.metadata:
            for name, group_schema in schema.GROUPS[field.metadata["group"]].items():
                found += reachable(group_schema, f"{key}[{name}].")
        elif dataclasses.is_dataclass(rules.declared(field)):
            found += reachable(rules.declared(field), f"{key}.")
        else:
            found.append((key, owner, field))
    return found


KEYS = [(command, *entry) for command, owner in schema.COMMANDS.items() for entry in reachable(owner, "")]


@pytest.mark.parametrize(("command", "key", "owner", "field"), KEYS,
                         ids=[f"{command}:{key}" for command, key, _, _ in KEYS])
def test_every_key_a_command_takes_has_its_help(command, key, owner, field):
    assert rules.help_of(owner, field.name), f"{key} ({owner.__name__}) has no help: use rules.setting"


def schemas_with_code(owner: type) -> list[type]:
    """``owner`` and the schemas nested in it (its groups' aside: they are listed on their own)."""
    found = [owner]
    for field in dataclasses.fields(owner):
        if dataclasses.is_dataclass(rules.declared(field)) and "group" not in field.metadata:
            found += schemas_with_code(rules.declared(field))
    return found


def written_defaults(code: Any) -> dict[str, ast.expr]:
    """Parameter -> its default as ``code``'s source writes it (a dataclass's generated
    ``__init__``: the field's value in the class body)."""
    try:
        function = ast.parse(textwrap.dedent(inspect.getsource(code.__init__ if inspect.isclass(code) else code)))
    except (OSError, TypeError):
        body = ast.parse(textwrap.dedent(inspect.getsource(code))).body[0].body
        return {node.target.id: node.value for node in body if isinstance(node, ast.AnnAssign) and node.value}
    args = function.body[0].args
    positional = [*args.posonlyargs, *args.args]
    found = dict(zip([arg.arg for arg in positional[len(positional) - len(args.defaults):]], args.defaults))
    return found | {arg.arg: value for arg, value in zip(args.kwonlyargs, args.kw_defaults) if value is not None}


def reads_a_schema(expression: ast.expr, code: Any) -> bool:
    """Whether a default is taken from a schema (``JacobiConfig.omega``, ``rules.default(MgNetConfig,
    "channels")``) rather than written again: it names a schema class of ``mgnet_cli.schema``."""
    names = vars(sys.modules[code.__module__])
    return any(inspect.isclass(found := names.get(node.id)) and found.__module__.startswith("mgnet_cli.schema.")
               for node in ast.walk(expression) if isinstance(node, ast.Name))


def code_defaults() -> dict[str, set[str]]:
    """Code a schema names (its default ``_target_`` and its ``TARGETS``) -> the keys of that schema
    the code gives a default of its own, written again instead of read from the schema
    (``StepDecay(step_epochs=50)`` beside ``StepDecayConfig``'s 50)."""
    owners = {nested for group in schema.GROUPS.values() for owner in group.values()
              for nested in schemas_with_code(owner)}
    owners |= {nested for owner in schema.COMMANDS.values() for nested in schemas_with_code(owner)}
    found = {}
    for owner in owners:
        keys = {field.name: field for field in dataclasses.fields(owner)}
        named = {keys["_target_"].default} if "_target_" in keys else set()
        for code in {*named, *getattr(owner, "TARGETS", ())}:
            if not isinstance(code, str) or not code.startswith("mgnet_cli."):
                continue  # no target, or torch's (the optimizers)
            built = hydra.utils.get_object(code)
            stated = {name for name, value in written_defaults(built).items()
                      if name in keys and not reads_a_schema(value, built)}
            if stated:
                found.setdefault(code, set()).update(stated)
    return found


def test_code_a_schema_names_states_none_of_its_defaults():
    """Each default is written once, in the schema: the library's own defaults (``MgNet()``, the
    paper's model; ``DampedJacobi(steps)``) read it from there, and the rest take every value."""
    assert code_defaults() == {}, "a default written twice: read it from the schema (rules.default)"


@dataclasses.dataclass
class WrittenTwice:
    """``StepDecay`` with the authors' values written as its own defaults."""
    step_epochs: int = 50
    gamma: float = 0.1
    counted_from: int = 1


def read_once(step_epochs: int = StepDecayConfig.step_epochs, gamma: float = rules.default(StepDecayConfig, "gamma"),
              counted_from: int = 1) -> None:
    """Two defaults read from the schema, one written again."""


def test_a_code_default_is_found():
    """The check itself: a literal default of a schema's key is named, one read from the schema is not."""
    from mgnet_cli.train import schedules
    for code, expected in ((WrittenTwice, {"step_epochs", "gamma", "counted_from"}), (read_once, {"counted_from"})):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(schedules, "StepDecay", code)
            assert code_defaults()["mgnet_cli.train.schedules.StepDecay"] == expected
    assert "mgnet_cli.train.schedules.StepDecay" not in code_defaults()
