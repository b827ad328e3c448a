"""Nothing from a file chooses code: crafted checkpoints are refused before anything is called."""

import copy
import pickle
from pathlib import Path

import pytest
import torch

from mgnet_cli.cli.resume import saved_config
from mgnet_cli.errors import MgnetError
from tests.helpers import mgnet, one_line_error, train


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
}


@pytest.fixture(scope="module")
def honest(tmp_path_factory) -> Path:
    """A real checkpoint of a tiny run."""
    run = train(tmp_path_factory.mktemp("honest") / "run")
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
])
def test_the_commands_refuse_a_crafted_checkpoint_and_create_nothing(honest, tmp_path, command, target, place):
    path, marker = crafted(honest, tmp_path, target, place)
    before = sorted(tmp_path.rglob("*"))
    arguments = (["eval", f"checkpoint={path}", "device=cpu"] if command == "eval"
                 else ["train", f"resume={path}", "trainer.epochs=2"])
    line = one_line_error(mgnet(*arguments, cwd=tmp_path, check=False), arguments[0])
    assert str(path) in line
    assert not marker.exists() and sorted(tmp_path.rglob("*")) == before


def test_a_learned_smoother_file_is_not_a_training_checkpoint(honest, tmp_path):
    path = tmp_path / "learned_smoother.pt"
    torch.save({"format_version": 1, "kind": "learned smoother", "kernels": torch.zeros(1, 3, 3)}, path)
    line = one_line_error(mgnet("eval", f"checkpoint={path}", cwd=tmp_path, check=False), "eval")
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
    assert message in one_line_error(mgnet("eval", f"checkpoint={path}", cwd=tmp_path, check=False), "eval")


@pytest.mark.parametrize("cut", [0, 100, 0.5])
def test_a_truncated_checkpoint_is_one_line(honest, tmp_path, cut):
    data = honest.read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[:int(cut * len(data)) if isinstance(cut, float) else cut])
    assert str(path) in one_line_error(mgnet("eval", f"checkpoint={path}", cwd=tmp_path, check=False), "eval")


def test_solve_calls_nothing_a_learned_smoother_file_names(tmp_path):
    """A learned_smoother.pt is data: kernels; code named anywhere in it is never called."""
    run = tmp_path / "learn"
    mgnet("solve", "solver/smoother=learned", "solver.learned.steps=2", "solver.learned.measure_every=2",
          "problem.n=31", "solver.learned.train_sizes=[15]", f"hydra.run.dir={run}", cwd=tmp_path)
    marker = tmp_path / "PWNED"
    state = torch.load(run / "learned_smoother.pt", weights_only=True)
    nodes = payloads(marker, run / "learned_smoother.pt")
    state["settings"] = nodes["os.system"]
    state["cycle"] = nodes["subprocess.Popen"]
    state["config"] = {"solver": {"smoother": nodes["builtins.exec"]}}
    crafted_file = tmp_path / "gift.pt"
    torch.save(state, crafted_file)
    mgnet("solve", "solver/smoother=learned", f"solver.learned.checkpoint={crafted_file}", "problem.n=31",
          f"hydra.run.dir={tmp_path / 'solve'}", cwd=tmp_path, check=False)
    assert not marker.exists()
