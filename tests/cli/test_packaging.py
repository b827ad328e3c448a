"""The configs ship inside the package, so `mgnet` works from any folder and from a wheel."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mgnet_cli.cli import config_dir

ROOT = Path(__file__).resolve().parents[2]


def test_every_config_is_in_the_package():
    packaged = config_dir()
    assert packaged.parent.name == "mgnet_cli"
    on_disk = sorted(p.relative_to(ROOT / "configs") for p in (ROOT / "configs").rglob("*.yaml"))
    assert sorted(p.relative_to(packaged) for p in packaged.rglob("*.yaml")) == on_disk


@pytest.mark.process
def test_a_built_wheel_holds_the_configs(tmp_path):
    pytest.importorskip("setuptools", reason="building a wheel needs setuptools")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    str(ROOT), "-w", str(tmp_path)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("mgnet-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    on_disk = {f"mgnet_cli/configs/{p.relative_to(ROOT / 'configs')}" for p in (ROOT / "configs").rglob("*.yaml")}
    assert on_disk <= names
