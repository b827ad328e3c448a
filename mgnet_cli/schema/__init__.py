"""The schema of every config: types, choices and defaults in dataclasses, ranges in ``__post_init__``.

Registered in Hydra's ConfigStore as ``schema/<group>/<name>``, which each YAML option extends, so
composing checks types and choices. ``typed`` rebuilds any config (composed, or read from a
checkpoint) on these schemas, each group's chosen by its ``_target_`` among the ones listed here;
``check`` runs their range rules. Both raise ``ConfigError`` naming the key: nothing from a file
picks code that a schema does not list.
"""

import functools
import types
import typing
from dataclasses import fields, is_dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from mgnet_cli.errors import ConfigError
from mgnet_cli.schema import commands, data, model, rules, solve, stored, train

GROUPS: dict[str, dict[str, type]] = {  # group -> schema name -> schema; YAML: /schema/<group>/<name>
    "trainer": {"trainer": train.TrainerConfig},
    "optimizer": {"sgd": train.SGDConfig, "adamw": train.AdamWConfig},
    "scheduler": {"step": train.StepDecayConfig, "cosine": train.WarmupCosineConfig,
                  "constant": train.ConstantConfig, "triangular": train.TriangularConfig},
    "dataset": {"files": data.FileDatasetConfig, "cifar100": data.Cifar100Config,
                "synthetic": data.SyntheticConfig, "imagefolder": data.ImageFolderConfig},
    "model": {"mgnet": model.MgNetConfig, "resnet": model.ResNetConfig},
    "smoother": {"base": model.SmootherConfig, "densenet": model.DenseNetSmootherConfig,
                 "chebyshev": model.ChebyshevSmootherConfig},
    "problem": {"poisson": solve.PoissonProblemConfig, "diffusion": solve.DiffusionProblemConfig,
                "anisotropic": solve.AnisotropicProblemConfig, "matrix": solve.MatrixProblemConfig},
    "solver/smoother": {"jacobi": solve.JacobiConfig, "base": solve.SolverSmootherConfig,
                        "chebyshev": solve.ChebyshevPolynomialConfig, "learned": solve.LearnedSmootherOptionConfig,
                        "stencil_aware": solve.StencilAwareOptionConfig},
}
COMMANDS: dict[str, type] = {"train": train.TrainConfig, "eval": commands.EvalConfig,
                             "info": commands.InfoConfig, "solve": solve.SolveConfig}


# Keys that are not the experiment, written once: where it runs and reads, on how many threads
# (PLACES), which replica it is (REPLICAS), how long and how fast it runs (PACE). A resume may change PLACES and PACE; a report
# groups over PLACES and REPLICAS; sweep folders leave PLACES and REPLICAS out of their names
# (configs/train.yaml's exclude_keys: ``${mgnet_not_the_experiment:}``, mgnet_cli.cli's resolver).
PLACES = ("resume", "dataset.root", "dataset.download", "trainer.device", "solver.device", "trainer.threads",
          "solver.threads", "hydra.")
REPLICAS = ("seed", "problem.seed")
PACE = ("trainer.epochs", "trainer.checkpoints", "trainer.eval_batch_size", "trainer.limit_eval_batches",
        "trainer.precision", "trainer.channels_last", "trainer.compile", "trainer.num_workers",
        "trainer.log_every_n_steps", "trainer.metrics_csv")


@functools.cache
def groups_of(command: str) -> tuple[str, ...]:
    """The config groups a command composes: its schema's ``rules.group`` fields, a group inside a
    node of the command's keys by its path (``solver/smoother``)."""
    def walk(owner: type, prefix: str) -> list[str]:
        found = []
        for field in fields(owner):
            if "group" in field.metadata:
                found.append(field.metadata["group"])
            elif is_dataclass(field.type):
                found += walk(field.type, f"{prefix}{field.name}/")
        return found

    return tuple(walk(COMMANDS[command], ""))


TRAIN_GROUPS = groups_of("train")


def node_at(config: Any, group: str) -> Any:
    """The node of ``group`` (``solver/smoother``: ``config["solver"]["smoother"]``), None if absent."""
    for part in group.split("/"):
        config = config.get(part) if isinstance(config, dict | DictConfig) else None
    return config


def register() -> None:
    """Stores every schema in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for group, schemas in GROUPS.items():
        for name, schema in schemas.items():
            store.store(group=f"schema/{group}", name=name, node=schema)
    for name, schema in COMMANDS.items():
        store.store(group="schema", name=name, node=schema)


def schema_for(group: str, node: Any, where: str) -> type:
    """The group's schema whose ``TARGETS`` hold ``node._target_`` (trainer: its one schema)."""
    schemas = list(GROUPS[group].values())
    if len(schemas) == 1 and not hasattr(schemas[0], "TARGETS"):
        return schemas[0]
    if not isinstance(node, dict | DictConfig):
        raise ConfigError(f"{where}{group.replace('/', '.')}={rules.shown(node)}: not a config node; "
                          f"choose one with {group}={node if isinstance(node, str) else 'NAME'}")
    key = getattr(schemas[0], "SELECTED_BY", "_target_")
    target = node.get(key)
    for schema in schemas:
        if target in schema.TARGETS:
            return schema
    allowed = [t for schema in schemas for t in schema.TARGETS]
    what = "not code mgnet calls" if key == "_target_" else f"not a {group} mgnet knows"
    raise ConfigError(f"{where}{group.replace('/', '.')}.{key}={rules.shown(target)}: {what}; "
                      f"use one of {', '.join(allowed)}")


def typed(config: dict[str, Any], command: str, source: str = "") -> DictConfig:
    """``config`` (plain data) rebuilt on the schemas of ``command``: unknown keys, wrong types and
    unlisted ``_target_`` raise ConfigError (prefixed ``source``). A config read from a file (a
    ``source`` given) is data: checked by ``stored`` before OmegaConf sees it."""
    where = f"{source}: " if source else ""
    groups = groups_of(command)
    if source:
        config = stored.data_folder_read(config)
        stored.refuse_interpolations(config, tuple(GROUPS), where)
    top = {key: value for key, value in config.items() if key not in groups}
    if source:
        stored.check_shapes(top, COMMANDS[command], "", where)
    root = merged(structured(COMMANDS[command]), top, where)
    OmegaConf.set_struct(root, False)  # the groups are Any-typed fields: each gets its own schema
    for group in groups:
        if "/" not in group and group not in config:
            raise ConfigError(f"{where}the config has no {group} group")
        node = node_at(config, group)
        node = dict(node) if isinstance(node, dict) else node
        if group == "model" and isinstance(node, dict) and isinstance(node.get("smoother"), dict):
            schema_for("smoother", node["smoother"], f"{where}model.")  # a resolved copy: checked, then
            node["smoother"] = "${smoother}"  # the smoother group is the one the model reads
        schema, key = schema_for(group, node, where), group.replace("/", ".")
        if source:
            stored.check_shapes(node, schema, f"{key}.", where)
        OmegaConf.update(root, key, merged(structured(schema), node, where, prefix=f"{key}."),
                         merge=False)
    OmegaConf.set_struct(root, True)
    return root


@functools.cache
def code_nodes() -> frozenset[str]:
    """The keys at which a group's schema nests a node that names code (a model's ``stem`` and
    ``block``, MgNet's ``smoother``, the smoother group): the only nodes built inside another."""
    names = set()
    for schemas in GROUPS.values():
        for owner in schemas.values():
            for field in fields(owner):
                kind = rules.declared(field)
                if hasattr(kind, "TARGETS") or (typing.get_origin(kind) is typing.Literal
                                                and all("${" in str(value) for value in typing.get_args(kind))):
                    names.add(field.name)
    return frozenset(names)


@functools.cache
def structured(schema: type) -> DictConfig:
    """``OmegaConf.structured(schema)``, built once per schema: ``merged`` never changes it
    (``OmegaConf.merge`` copies its first argument), and rebuilding is a third of a check's time."""
    return OmegaConf.structured(schema)


def merged(schema: DictConfig, values: Any, where: str, prefix: str = "") -> DictConfig:
    """``values`` merged onto the structured ``schema``, an error as one line naming the key."""
    try:
        return OmegaConf.merge(schema, values)
    except OmegaConfBaseException as error:
        raise ConfigError(where + type_error(error, prefix, from_file=bool(where))) from None


def type_error(error: OmegaConfBaseException, prefix: str = "", from_file: bool = False) -> str:
    """``<key>=<value>: <what the schema allows>`` for an OmegaConf validation or key error."""
    key = f"{prefix}{error.full_key}" if getattr(error, "full_key", None) else prefix.rstrip(".")
    object_type = getattr(error, "object_type", None)
    if isinstance(error, KeyError | AttributeError):
        if from_file:
            return f"{key}: a key this mgnet does not write (the file is from elsewhere, or altered)"
        return f"{key}: no such key (`--cfg job` prints every key there is)"
    expected = expected_type(object_type, str(error.full_key).rsplit(".", 1)[-1])
    return f"{key}={rules.shown(error.value)}: {expected}"


def expected_type(owner: type | None, name: str) -> str:
    """What a field of ``owner`` takes, in words."""
    if owner is None or not is_dataclass(owner):
        return "wrong type"
    for field in fields(owner):
        if field.name == name:
            kind = rules.declared(field)
            options = [option for option in typing.get_args(kind) if option is not type(None)]
            if isinstance(kind, types.UnionType) and len(options) == 1:  # int | None
                return expected_type_of(options[0]) + " (or null)"
            return expected_type_of(kind)
    return "wrong type"


def expected_type_of(kind: Any) -> str:
    """What a value of type ``kind`` must be, in words."""
    text = getattr(kind, "__name__", str(kind))
    if isinstance(kind, type) and issubclass(kind, rules.Enum):
        return f"use one of {rules.choices(kind)}"
    return {"int": "give an integer", "float": "give a number", "bool": "give true or false",
            "str": "give a string"}.get(text, f"give a value of type {text}".replace("typing.", ""))


def check(cfg: DictConfig, command: str) -> Any:
    """Runs every range rule of ``cfg`` (typed by ``typed`` or composed by Hydra) and returns the
    schema objects (``checked.trainer`` a ``TrainerConfig``, ...); a broken rule is a ConfigError."""
    resolved = resolved_config(cfg)
    checked = {}
    for group in groups_of(command):
        node = node_at(resolved, group)
        checked[group] = checked_object(schema_for(group, node, ""), node, f"{group.replace('/', '.')}.")
    result = checked_object(COMMANDS[command], {key: value for key, value in resolved.items()
                                                if key not in checked}, "")
    for group, value in checked.items():
        *parents, name = group.split("/")
        setattr(functools.reduce(getattr, parents, result), name, value)
    if hasattr(result, "across_groups"):
        try:
            result.across_groups()
        except rules.Invalid as invalid:
            raise ConfigError(str(invalid)) from None
    return result


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as error:
        raise ConfigError(type_error(error)) from None


def checked_object(schema: type, values: dict[str, Any], prefix: str) -> Any:
    """``values`` as an instance of ``schema``, an error naming its path: the schema's own fields
    first (nested schemas at their defaults: a nested value may derive from them), then each
    nested schema, then the whole."""
    nested = [field for field in fields(schema)
              if is_dataclass(field.type) and isinstance(values.get(field.name), dict)]
    own = {key: value for key, value in values.items() if key not in {f.name for f in nested}}
    built(schema, own, prefix)
    for field in nested:
        checked_object(field.type, values[field.name], f"{prefix}{field.name}.")
    return built(schema, values, prefix)


def built(schema: type, values: dict[str, Any], prefix: str) -> Any:
    try:
        return OmegaConf.to_object(merged(structured(schema), values, "", prefix))
    except rules.Invalid as invalid:
        raise ConfigError(f"{prefix}{invalid}") from None
    except MissingMandatoryValue as error:  # a ??? in the YAML: a key the user must give
        key = f"{prefix}{error.full_key}"
        raise ConfigError(f"{key} is required: give {key}=...") from None
