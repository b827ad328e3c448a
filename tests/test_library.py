"""``import mgnet_cli``: README's "Use as a library" block runs as written, and the exports behave."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mgnet_cli.errors import ConfigError
from tests.helpers import TINY, cli, copy_run, process_state_kept

README = Path(__file__).resolve().parents[1] / "README.md"


def library_block(index: int = 0) -> str:
    section = README.read_text().split("## Use as a library", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)[index]


def test_readmes_library_block_runs_as_written(tmp_path):
    cli("train", "dataset=synthetic", "trainer=smoke", "trainer.device=cpu", "hydra.run.dir=outputs/smoke",
          cwd=tmp_path)
    code = library_block() + "\nassert logits.shape == (8, 10) and not trained.training\n"
    with process_state_kept(tmp_path):  # in this process, in fresh globals: the block imports what it uses
        exec(compile(code, str(README), "exec"), {"__name__": "readme_block"})


def test_readmes_solver_block_runs_as_written():
    """The library's solver takes the schema's ``SolverConfig`` whole, with its defaults and checks."""
    scope = {"__name__": "readme_block"}
    exec(compile(library_block(1), str(README), "exec"), scope)
    result = scope["result"]
    assert result.status == "converged" and result.error_max < 1e-4


def test_the_library_solver_refuses_a_bad_key_as_the_schema_does():
    from mgnet_cli.schema.solve import SolverConfig

    with pytest.raises(ValueError, match=r"^coarsest_n=8: give 2\^L - 1"):
        SolverConfig(coarsest_n=8)


def test_build_model_checks_overrides_as_the_command_line_does():
    from mgnet_cli import build_model

    with pytest.raises(ConfigError, match=r"^model.channels=0: give a width"):
        build_model(["model.channels=0"])
    assert sum(p.numel() for p in build_model(TINY[4:6]).parameters()) > 0


def test_importing_the_package_imports_no_torch():
    code = "import sys, mgnet_cli; assert 'torch' not in sys.modules; print(mgnet_cli.__all__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "load_model" in result.stdout, result.stderr


def test_create_model_refuses_an_unknown_preset_naming_the_choices():
    """``experiment`` is an optional group: an unknown preset was dropped, and the default MgNet came back."""
    from mgnet_cli import create_model

    with pytest.raises(ConfigError, match=r"^experiment=resnet18_cifar: no such option\n  choose one of: "
                                          r"mgnet_cifar10, .*, resnet18_cifar10, resnet18_cifar100$"):
        create_model("resnet18_cifar")


def test_load_model_runs_nothing_a_checkpoints_config_names(tiny_run, tmp_path):
    """The library reads a checkpoint's config as data, as ``mgnet eval`` does."""
    import json

    import torch

    from mgnet_cli import load_model

    run = copy_run(tiny_run, tmp_path / "run")
    state = torch.load(run / "last.pt", weights_only=True)
    marker = tmp_path / "PWNED"
    node = {"_target_": "shutil.copyfile", "src": str(run / "last.pt"), "dst": str(marker)}
    for key in ("config", "config_source"):
        state[key]["model"]["smoother"] = f"${{oc.create:{json.dumps(node)}}}"
    torch.save(state, tmp_path / "gift.pt")
    with pytest.raises(ConfigError, match=r"gift.pt: model.smoother=.*: an interpolation the shipped configs"):
        load_model(tmp_path / "gift.pt")
    assert not marker.exists()
