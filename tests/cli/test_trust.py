"""Nothing from a file chooses code: crafted checkpoints are refused before anything is called."""

import copy
import json
import pickle
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from mgnet_cli import schema
from mgnet_cli.cli import config_dir, register_configs
from mgnet_cli.cli.build import build_model, plain
from mgnet_cli.cli.resume import saved_config
from mgnet_cli.errors import ConfigError, MgnetError
from mgnet_cli.schema import rules
from tests.helpers import cli, copy_run, one_line_error
from tests.schema.test_schema import options_extending


class Pickled:
    """A pickle that touches ``marker`` when unpickled without ``weights_only``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def payloads(marker: Path, base: Path) -> dict[str, dict]:
    """A config node per callable that would create ``marker`` if it were ever instantiated."""
    evil_pickle = marker.parent / "evil.pkl"
    evil_pickle.write_bytes(pickle.dumps(Pickled(marker)))
    return {
        "os.system": {"_target_": "os.system", "command": f"touch {marker}"},
        "subprocess.Popen": {"_target_": "subprocess.Popen", "args": ["touch", str(marker)]},
        "distutils.spawn.spawn": {"_target_": "distutils.spawn.spawn", "cmd": ["touch", str(marker)]},
        "shutil.copyfile": {"_target_": "shutil.copyfile", "src": str(base), "dst": str(marker)},
        "builtins.exec": {"_target_": "builtins.exec", "_args_": [f"open({str(marker)!r}, 'w')"]},
        "torch.load": {"_target_": "torch.load", "f": str(evil_pickle), "weights_only": False},
    }


PLACES = {  # where a crafted node goes in the checkpoint's config
    "group target": lambda config, node: config.__setitem__("optimizer", node),
    "a value's place": lambda config, node: config["dataset"].__setitem__("num_train", node),
    "a new top-level key": lambda config, node: config.__setitem__("callback", node),
    "a key the loader ignores": lambda config, node: config["trainer"].__setitem__("notes", node),
    "the model's smoother": lambda config, node: config["model"].__setitem__("smoother", node),
    "the model's stem": lambda config, node: config["model"]["stem"].__setitem__("_target_", node["_target_"]),
    "a resolver in the model's smoother":
        lambda config, node: config["model"].__setitem__("smoother", f"${{oc.create:{json.dumps(node)}}}"),
    "a list in the model's smoother": lambda config, node: config["model"].__setitem__("smoother", [node]),
    "a decoded string in a width": lambda config, node: config["model"].__setitem__(
        "channels_f", f"${{oc.decode:{json.dumps(json.dumps(node))}}}"),
}


@pytest.fixture(scope="module")
def honest(tiny_run, tmp_path_factory) -> Path:
    """A real checkpoint of a tiny run."""
    run = copy_run(tiny_run, tmp_path_factory.mktemp("honest") / "run")
    return run / "last.pt"


def crafted(honest: Path, folder: Path, target: str, place: str) -> tuple[Path, Path]:
    """A copy of ``honest`` whose config (and config_source) carries the payload; its marker."""
    marker = folder / "PWNED"
    state = torch.load(honest, weights_only=True)
    for key in ("config", "config_source"):
        PLACES[place](state[key], copy.deepcopy(payloads(marker, honest)[target]))
    path = folder / "gift.pt"
    torch.save(state, path)
    return path, marker


@pytest.mark.parametrize("place", list(PLACES))
@pytest.mark.parametrize("target", ["os.system", "subprocess.Popen", "distutils.spawn.spawn",
                                    "shutil.copyfile", "builtins.exec", "torch.load"])
def test_a_crafted_config_is_refused_naming_the_key(honest, tmp_path, target, place):
    path, marker = crafted(honest, tmp_path, target, place)
    with pytest.raises(MgnetError) as refused:
        saved_config(torch.load(path, weights_only=True), path)
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)
    assert not marker.exists()


@pytest.mark.parametrize("command, target, place", [
    ("eval", "distutils.spawn.spawn", "a value's place"),
    ("eval", "os.system", "a new top-level key"),
    ("eval", "builtins.exec", "group target"),
    ("resume", "subprocess.Popen", "a key the loader ignores"),
    ("resume", "shutil.copyfile", "the model's smoother"),
    ("resume", "torch.load", "the model's stem"),
    ("eval", "shutil.copyfile", "a resolver in the model's smoother"),
    ("resume", "shutil.copyfile", "a list in the model's smoother"),
])
def test_the_commands_refuse_a_crafted_checkpoint_and_create_nothing(honest, tmp_path, command, target, place):
    path, marker = crafted(honest, tmp_path, target, place)
    before = sorted(tmp_path.rglob("*"))
    arguments = (["eval", f"checkpoint={path}", "device=cpu"] if command == "eval"
                 else ["train", f"resume={path}", "trainer.epochs=2"])
    line = one_line_error(cli(*arguments, cwd=tmp_path, check=False), arguments[0])
    assert str(path) in line
    assert not marker.exists() and sorted(tmp_path.rglob("*")) == before


def test_a_learned_smoother_file_is_not_a_training_checkpoint(honest, tmp_path):
    path = tmp_path / "learned_smoother.pt"
    torch.save({"format_version": 1, "kind": "learned smoother", "kernels": torch.zeros(1, 3, 3)}, path)
    line = one_line_error(cli("eval", f"checkpoint={path}", cwd=tmp_path, check=False), "eval")
    assert "is a learned smoother file, not a training checkpoint" in line


@pytest.mark.parametrize("change, message", [
    (lambda s: s.__setitem__("format_version", "1"), "format_version '1' is not a positive integer"),
    (lambda s: s.__setitem__("model", [1, 2]), "no model weights"),
    (lambda s: s.__setitem__("epoch", 1.5), "epoch 1.5 is not a count"),
    (lambda s: s.__setitem__("config", "train.yaml"), "no config"),
])
def test_a_checkpoint_of_the_wrong_structure_says_what_is_wrong(honest, tmp_path, change, message):
    state = torch.load(honest, weights_only=True)
    change(state)
    path = tmp_path / "odd.pt"
    torch.save(state, path)
    assert message in one_line_error(cli("eval", f"checkpoint={path}", cwd=tmp_path, check=False), "eval")


@pytest.mark.parametrize("cut", [0, 100, 0.5])
def test_a_truncated_checkpoint_is_one_line(honest, tmp_path, cut):
    data = honest.read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[:int(cut * len(data)) if isinstance(cut, float) else cut])
    assert str(path) in one_line_error(cli("eval", f"checkpoint={path}", cwd=tmp_path, check=False), "eval")


def test_solve_calls_nothing_a_learned_smoother_file_names(tmp_path):
    """A learned_smoother.pt is data: kernels; code named anywhere in it is never called."""
    run = tmp_path / "learn"
    cli("solve", "solver/smoother=learned", "solver.smoother.learning.steps=2", "solver.smoother.learning.measure_every=2",
        "problem.n=31", "solver.smoother.learning.train_sizes=[15]", f"hydra.run.dir={run}", cwd=tmp_path)
    marker = tmp_path / "PWNED"
    state = torch.load(run / "learned_smoother.pt", weights_only=True)
    nodes = payloads(marker, run / "learned_smoother.pt")
    state["settings"] = nodes["os.system"]
    state["cycle"] = nodes["subprocess.Popen"]
    state["config"] = {"solver": {"smoother": nodes["builtins.exec"]}}
    crafted_file = tmp_path / "gift.pt"
    torch.save(state, crafted_file)
    cli("solve", "solver/smoother=learned", f"solver.smoother.learning.checkpoint={crafted_file}", "problem.n=31",
        f"hydra.run.dir={tmp_path / 'solve'}", cwd=tmp_path, check=False)
    assert not marker.exists()


# --- a stored config is data: every field of every schema, given code three ways ---------------
def evaluated(marker: Path) -> str:
    """A resolver that creates ``marker`` whenever it is evaluated: nothing read from a file may be."""
    if not OmegaConf.has_resolver("test_touch"):
        OmegaConf.register_new_resolver("test_touch", lambda path: Path(path).touch() or 1)
    return f"${{test_touch:{marker}}}"


def code_payloads(marker: Path, source: Path) -> dict[str, object]:
    """Values that create ``marker`` if evaluated or instantiated (``source`` is copied there)."""
    node = {"_target_": "shutil.copyfile", "src": str(source), "dst": str(marker)}
    return {"resolver": evaluated(marker), "oc.create": f"${{oc.create:{json.dumps(node)}}}",
            "oc.decode": f"${{oc.decode:{json.dumps(json.dumps(node))}}}", "list": [node], "node": node}


def field_paths(owner: type, prefix: str = ""):
    """The dotted path of every field of ``owner`` and of its nested schemas (groups aside)."""
    for field in fields(owner):
        if "group" not in field.metadata:
            yield f"{prefix}{field.name}"
            if is_dataclass(rules.declared(field)):
                yield from field_paths(rules.declared(field), f"{prefix}{field.name}.")


def stored_cases():
    """(command, overrides selecting the schema, dotted path) for every field of every schema."""
    extended = options_extending()
    for command in ("train", "solve"):
        yield from ((command, (), path) for path in field_paths(schema.COMMANDS[command]))
        groups = schema.groups_of(command)
        yield from ((command, (), group.replace("/", ".")) for group in groups)
    for group, schemas in schema.GROUPS.items():
        command = "solve" if group in ("problem", "solver/smoother") else "train"
        for name, owner in schemas.items():
            select = () if group == "trainer" else (f"{group}={extended[(group, name)]}",)
            yield from ((command, select, f"{group.replace('/', '.')}.{path}") for path in field_paths(owner))


STORED = sorted(set(stored_cases()))


@pytest.fixture(scope="module")
def stored_configs():
    """(command, overrides) -> the config composed and written as a checkpoint stores it."""
    from hydra import compose, initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return {(command, select): plain(compose(command, overrides=list(select)), resolve=False)
                for command, select in {(case[0], case[1]) for case in STORED}}


def test_the_stored_cases_cover_every_schema():
    covered = {path for _, _, path in STORED}
    assert {"model.smoother", "model.channels", "dataset.shape.num_classes", "solver.smoother.omega",
            "scheduler.epochs", "optimizer._target_", "problem.n", "dataset"} <= covered
    assert len(STORED) > 150


@pytest.mark.parametrize("payload", ["resolver", "oc.create", "oc.decode", "list", "node"])
@pytest.mark.parametrize("command, select, path", STORED, ids=[f"{c[0]}-{c[2]}" for c in STORED])
def test_a_stored_config_is_data_in_every_field(stored_configs, tmp_path, command, select, path, payload):
    """A value that would run code, at any key of any schema: refused in one line naming the key,
    and nothing evaluated or called (the schema check, then the model built as eval does)."""
    marker = tmp_path / "PWNED"
    config = copy.deepcopy(stored_configs[(command, select)])
    *parents, key = path.split(".")
    node = config
    for parent in parents:
        node = node[parent]
    node[key] = copy.deepcopy(code_payloads(marker, Path(__file__))[payload])
    with pytest.raises(ConfigError) as refused:
        cfg = schema.typed(config, command, source="gift.pt")
        schema.check(cfg, command)
        if command == "train":
            build_model(cfg, 3, 10)
    message = str(refused.value)
    assert message.startswith(f"gift.pt: {parents[0] if parents else key}") and "\n" not in message, message
    assert not marker.exists()


def test_the_shipped_interpolations_load_from_a_file(stored_configs):
    """What the shipped options hold (``${trainer.epochs}``, ``${smoother}``) is still read."""
    config = stored_configs[("train", ("scheduler=cosine",))]
    assert config["scheduler"]["epochs"] == "${trainer.epochs}" and config["model"]["smoother"] == "${smoother}"
    config["trainer"]["epochs"] = 7
    checked = schema.check(schema.typed(config, "train", source="gift.pt"), "train")
    assert checked.scheduler.epochs == 7


def test_an_older_runs_data_folder_is_read_without_a_resolver(stored_configs, monkeypatch):
    """Runs written before mgnet recorded its data folder hold the shipped
    ``${oc.env:MGNET_DATA_DIR,data}``: read in Python as the shipped config reads it; any other
    resolver there, or that one at another key, is refused."""
    config = copy.deepcopy(stored_configs[("train", ())])
    monkeypatch.setenv("MGNET_DATA_DIR", "/elsewhere")
    config["dataset"]["root"] = "${oc.env:MGNET_DATA_DIR,data}"
    assert schema.typed(config, "train", source="old.pt").dataset.root == "/elsewhere"
    monkeypatch.delenv("MGNET_DATA_DIR")
    assert schema.typed(config, "train", source="old.pt").dataset.root == "data"
    for key, value in (("root", "${oc.env:HOME}"), ("download", "${oc.env:MGNET_DATA_DIR,data}")):
        crafted = copy.deepcopy(config)
        crafted["dataset"][key] = value
        with pytest.raises(ConfigError, match=f"old.pt: dataset.{key}="):
            schema.typed(crafted, "train", source="old.pt")


def test_only_the_nodes_the_schemas_name_code_at_are_built(tmp_path):
    """``instantiate`` builds a model's stem, block and smoother, never a node a config nests elsewhere."""
    from mgnet_cli.cli.build import instantiate

    marker = tmp_path / "PWNED"
    node = {"_target_": "shutil.copyfile", "src": __file__, "dst": str(marker)}
    built = instantiate({"_target_": "builtins.dict", "settings": node, "entries": [node]})
    assert built == {"settings": node, "entries": [node]} and not marker.exists()
    stem = instantiate({"_target_": "builtins.dict", "stem": {"_target_": "builtins.dict", "_partial_": True}})
    assert stem["stem"]() == {}  # a stem is built (a partial), as the model needs it


def test_a_config_nested_without_end_is_one_line(stored_configs):
    config = copy.deepcopy(stored_configs[("train", ())])
    node = config["trainer"]
    for _ in range(5000):
        node["notes"] = {}
        node = node["notes"]
    with pytest.raises(ConfigError, match=r"^gift.pt: trainer(\.notes)+: nested deeper than any config mgnet writes$"):
        schema.typed(config, "train", source="gift.pt")
