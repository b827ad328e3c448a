"""Every key of every schema: a wrong type and an out-of-range value are each refused in one line.

The cases are generated from the dataclasses in ``mgnet_cli.schema`` (and the YAML options that
extend them), so a key added to a schema is covered the day it is added.
"""

import copy
import functools
import re
import typing
from dataclasses import fields, is_dataclass
from enum import Enum
from types import NoneType, UnionType

import pytest

from mgnet_cli import schema
from mgnet_cli.cli import config_dir, register_configs
from mgnet_cli.cli.preflight import check_job
from mgnet_cli.errors import ConfigError

CONFIGS = config_dir()
EXTENDS = re.compile(r"^\s*- /schema/([\w/]+)/(\w+)@(?:_here_|[\w.]+)", re.M)  # _here_, or a _global_ option's group
HUGE = 2**64
NO_RANGE = {  # fields whose every well-typed value is allowed (booleans, choices, free paths)
    "download", "deterministic", "compile", "channels_last", "skip_nonfinite", "checkpoints",
    "sync_bn", "flip", "nesterov", "final_norm_activation", "norm_activation", "b_per_step",
    "smoother",
}


def options_extending() -> dict[tuple[str, str], str]:
    """(group, schema name) -> the first YAML option of the group that extends it."""
    found: dict[tuple[str, str], str] = {}
    for path in sorted(CONFIGS.rglob("*.yaml")):
        for group, name in EXTENDS.findall(path.read_text()):
            found.setdefault((group, name), path.stem)
    return found


def test_every_option_extends_a_schema_and_every_schema_is_used():
    used = options_extending()
    for group in schema.GROUPS:
        for path in (CONFIGS / group).glob("*.yaml"):
            text = path.read_text()
            assert EXTENDS.search(text) or re.search(r"^\s*- default$", text, re.M), \
                f"{path} extends no schema"
        for name in schema.GROUPS[group]:
            assert (group, name) in used, f"schema/{group}/{name} is extended by no YAML option"


def leaves(owner: type, prefix: str = ""):
    """(dotted key, field type) for every field of ``owner``, nested schemas flattened."""
    for field in fields(owner):
        kind = field.type
        if is_dataclass(kind):
            yield from leaves(kind, f"{prefix}{field.name}.")
        elif field.name not in ("dataset", "model", "smoother", "optimizer", "scheduler", "trainer",
                                "problem") or prefix:
            yield f"{prefix}{field.name}", kind


def inner(kind):
    """``int | None`` -> ``int``."""
    if isinstance(kind, UnionType) or typing.get_origin(kind) is typing.Union:
        return next(arg for arg in typing.get_args(kind) if arg is not NoneType)
    return kind


def wrong_type(kind) -> str:
    kind = inner(kind)
    if kind is str:
        return "{a:1}"
    if typing.get_origin(kind) is dict:
        return "abc"
    return "nonsense"  # int, float, bool, Enum, lists, Any (a width): a word is none of them


def out_of_range(key: str, kind) -> list[str]:
    """Values of the right type that the range rules must refuse (none for NO_RANGE fields)."""
    name = key.rsplit(".", 1)[-1]
    kind = inner(kind)
    if name == "_target_":
        return ["os.system"]
    if name == "_partial_":
        return ["false"]
    if name in NO_RANGE or kind is bool or (isinstance(kind, type) and issubclass(kind, Enum)):
        return []
    if name == "num_classes":  # a class count: at least two classes, wherever it is given
        return ["0", "1", "-1", str(HUGE)]
    if name == "norm_bias_decay":  # bool | float: a flag, or a factor of the weight decay
        return ["-1", "nan"]
    if kind is int or name in ("channels", "channels_f"):
        return ["-1", str(HUGE)]
    if kind is float:
        return ["-1e30", "nan"]
    if typing.get_origin(kind) is list:
        return ["[]"]
    if typing.get_origin(kind) is dict:
        return ["{fine:0,coarse:0}"]
    if kind is str:
        return ["tpu"] if name == "device" else ["''"]
    raise AssertionError(f"{key}: no out-of-range value known for {kind}; add one to this test")


def cases():
    """(command, selecting overrides, key, value, what) for every field of every schema."""
    extended = options_extending()
    for group, schemas in schema.GROUPS.items():
        for name, owner in schemas.items():
            select = [] if group == "trainer" else [f"{group}={extended[(group, name)]}"]
            if group == "dataset" and name == "imagefolder":
                select.append("dataset.root=/nonexistent")
            command = "solve" if group in ("problem", "solver/smoother") else "train"
            for key, kind in leaves(owner):
                values = [("type", wrong_type(kind))] + [("range", v) for v in out_of_range(key, kind)]
                for what, value in values:
                    yield command, select, f"{group.replace('/', '.')}.{key}", value, what
    for command, owner in schema.COMMANDS.items():
        select = ["checkpoint=some.pt"] if command == "eval" else []
        for key, kind in leaves(owner):
            values = [("type", wrong_type(kind))] + [("range", v) for v in out_of_range(key, kind)]
            for what, value in values:
                yield command, select, key, value, what


CASES = list(cases())


@pytest.fixture(scope="module")
def hydra_initialised():
    """One Hydra initialisation for the module (``check_overrides`` makes one per command line)."""
    from hydra import initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        yield


@functools.cache
def composed(command: str, select: tuple[str, ...]):
    """Hydra's composition of ``command`` with the options ``select`` names, made once per pair."""
    from hydra import compose

    return compose(command, overrides=list(select))


def compose_on_base(command: str, overrides: list[str]):
    """``hydra.compose(command, overrides)``, the same config, in a fraction of the time when the last
    override sets a key (``key=value``): Hydra composes what the other overrides select, sets struct
    mode, and only then applies each key=value override to that config with
    ``ConfigLoaderImpl._apply_overrides_to_config``, the parser's ``Override`` in hand. So does this,
    to a copy of the composition of the others, made once (``composed``). An override that changes
    what is composed (a group's option, a sweep, a hydra key) is composed whole."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    *select, last = overrides
    override = OverridesParser.create().parse_overrides([last])[0]
    repository = GlobalHydra.instance().hydra.config_loader.repository
    if override.is_sweep_override() or override.is_hydra_override() or repository.group_exists(override.key_or_group):
        return composed(command, tuple(overrides))
    cfg = copy.deepcopy(composed(command, tuple(select)))
    ConfigLoaderImpl._apply_overrides_to_config([override], cfg)
    return cfg


@pytest.mark.parametrize("command, select, key, value, what", CASES,
                         ids=[f"{c[0]}-{c[2]}={c[3]}-{c[4]}" for c in CASES])
def test_every_key_refuses_bad_values_in_one_line(hydra_initialised, command, select, key, value, what):
    with pytest.raises(ConfigError) as refused:
        check_job(command, [*select, f"{key}={value}"], compose=compose_on_base)
    message = str(refused.value)
    assert "\n" not in message.strip(), message
    assert message.startswith(key), f"{key}={value} ({what}) refused, but the message names another key: {message}"


BASES = list({(c[0], tuple(c[1])): c for c in reversed(CASES) if c[4] == "type"}.values())  # each base's first


@pytest.mark.parametrize("command, select, key, value, what", BASES, ids=[f"{c[0]}-{c[2]}={c[3]}" for c in BASES])
def test_a_composed_base_refuses_as_hydra_does(hydra_initialised, command, select, key, value, what):
    """``compose_on_base`` is Hydra's compose where a wrong type is caught: as OmegaConf applies the
    override (a value out of range is caught later, by the schema, in both)."""
    overrides = [*select, f"{key}={value}"]
    with pytest.raises(ConfigError) as fast:
        check_job(command, overrides, compose=compose_on_base)
    with pytest.raises(ConfigError) as hydras:
        check_job(command, overrides)
    assert str(fast.value) == str(hydras.value)


@pytest.mark.parametrize("command, good", [("train", "seed=7"), ("info", "seed=7"), ("eval", "batch_size=7"),
                                           ("solve", "solver.tol=1e-6")])
def test_a_composed_base_with_a_key_set_is_hydras_composition(hydra_initialised, command, good):
    from hydra import compose

    select = ["checkpoint=some.pt"] if command == "eval" else []
    assert compose_on_base(command, [*select, good]) == compose(command, overrides=[*select, good])


def test_the_cases_cover_every_schema_field():
    covered = {(case[0], case[2]) for case in CASES}
    for group, schemas in schema.GROUPS.items():
        for owner in schemas.values():
            for key, _ in leaves(owner):
                assert any(case[1] == f"{group.replace('/', '.')}.{key}" for case in covered)
    assert len(CASES) > 150


@pytest.mark.parametrize("command", ["train", "eval", "info", "solve"])
def test_the_shipped_defaults_pass_their_schema(hydra_initialised, command):
    check_job(command, ["checkpoint=some.pt"] if command == "eval" else [])


def test_rules_name_the_interval_and_the_choices(hydra_initialised):
    with pytest.raises(ConfigError, match=r"^optimizer.momentum=1.0: give a finite number in \[0, 1\)$"):
        check_job("train", ["optimizer.momentum=1.0"])
    with pytest.raises(ConfigError, match=r"^trainer.precision=fp8: use one of fp32, bf16, fp16, auto$"):
        check_job("train", ["trainer.precision=fp8"])
    with pytest.raises(ConfigError, match=r"^scheduler.warmup_epochs=5.0: give a finite number in \[0, 3\) "
                                          r"\(a warm-up shorter than the run, trainer.epochs=3\)$"):
        check_job("train", ["scheduler=cosine", "trainer.epochs=3"])


def test_sweep_folders_leave_out_the_keys_that_are_not_the_experiment(hydra_initialised):
    """A job's folder is named by its overrides less PLACES and REPLICAS (train.yaml reads them);
    the thread count changes no result, so it names no job."""
    from hydra import compose

    cfg = compose("train", overrides=["seed=3", "resume=null", "trainer.device=cpu", "dataset.root=x",
                                      "dataset.download=false", "trainer.epochs=2", "optimizer.lr=0.2",
                                      "trainer.threads=1"],
                  return_hydra_config=True)
    assert cfg.hydra.job.override_dirname == "optimizer.lr=0.2,trainer.epochs=2"
    assert "search" in cfg.hydra.job.config.override_dirname.exclude_keys  # search=optuna names no job


def test_a_plain_schema_allows_the_code_its_shipped_options_name(tmp_path, monkeypatch):
    """``shipped.targets``: the ``_target_`` of each YAML extending the schema, nothing else."""
    from mgnet_cli import shipped

    group = tmp_path / "smoother"
    group.mkdir()
    (group / "a.yaml").write_text("defaults:\n  - /schema/smoother/base@_here_\n  - _self_\n_target_: pkg.A\n")
    (group / "b.yaml").write_text("defaults:\n  - /schema/smoother/densenet@_here_\n_target_: pkg.B\n")
    (group / "c.yaml").write_text("_target_: pkg.C\n")  # extends nothing: calls nothing
    # the real groups: every shipped smoother's code, on both sides, and only that (read before
    # config_dir points elsewhere: a schema reads its targets when first asked)
    assert schema.GROUPS["smoother"]["base"].TARGETS == ("mgnet_cli.model.smoothers.resnet.ResNetSmoother",)
    assert "mgnet_cli.pde.lines.ZebraLineGaussSeidel" in schema.GROUPS["solver/smoother"]["base"].TARGETS
    monkeypatch.setattr(shipped, "config_dir", lambda: tmp_path)
    assert shipped.targets.__wrapped__("smoother", "base") == ("pkg.A",)
    assert shipped.targets.__wrapped__("smoother", "densenet") == ("pkg.B",)


def test_importing_the_schemas_reads_no_file():
    """A schema lists the code its shipped options name when first asked (``shipped.Targets``),
    not at import, on the training and the solve side alike."""
    import subprocess
    import sys

    spy = ("import pathlib\nread = []\noriginal = pathlib.Path.read_text\n"
           "def recorded(self, *args, **kwargs):\n    read.append(str(self))\n    return original(self, *args, **kwargs)\n"
           "pathlib.Path.read_text = recorded\nimport mgnet_cli.schema\nprint('\\n'.join(read))\n")
    result = subprocess.run([sys.executable, "-c", spy], capture_output=True, text=True, check=True)
    read = result.stdout.split()
    assert read == []
    assert schema.GROUPS["solver/smoother"]["jacobi"].TARGETS == ("mgnet_cli.pde.smoothers.DampedJacobi",)
    assert schema.GROUPS["smoother"]["densenet"].TARGETS == ("mgnet_cli.model.smoothers.densenet.DenseNetSmoother",)
