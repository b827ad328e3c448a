"""``import mgnet_cli``: README's "Use as a library" block runs as written, and the exports behave."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mgnet_cli.errors import ConfigError
from tests.helpers import TINY, mgnet

README = Path(__file__).resolve().parents[1] / "README.md"


def library_block() -> str:
    section = README.read_text().split("## Use as a library", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readmes_library_block_runs_as_written(tmp_path):
    mgnet("train", "dataset=synthetic", "trainer=smoke", "trainer.device=cpu", "hydra.run.dir=outputs/smoke",
          cwd=tmp_path)
    code = library_block() + "\nassert logits.shape == (8, 10) and not trained.training\n"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr


def test_build_model_checks_overrides_as_the_command_line_does():
    from mgnet_cli import build_model

    with pytest.raises(ConfigError, match=r"^model.channels=0: give a width"):
        build_model(["model.channels=0"])
    assert sum(p.numel() for p in build_model(TINY[4:6]).parameters()) > 0


def test_importing_the_package_imports_no_torch():
    code = "import sys, mgnet_cli; assert 'torch' not in sys.modules; print(mgnet_cli.__all__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "load_model" in result.stdout, result.stderr
