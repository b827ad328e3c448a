"""Bad input costs one line (plus at most a hint) and exit code 2, never a traceback."""

import pytest

from tests.helpers import TINY, cli, one_line_error


@pytest.mark.parametrize("arguments, message", [
    (["smoother=cheb"], "smoother=cheb: no such option"),
    (["-m", "smoother=resnet,cheb"], "smoother=cheb: no such option"),
    (["trainer.epoch=3"], "trainer.epoch: no such key"),
    (["model.smoothing_steps=[1,2"], "cannot parse the command line"),
    (["hydra.run.dir=/etc/hostname/run"], "cannot write the run folder"),
    ([*TINY, "model.channels=abc"], "model.channels=abc: give one integer"),
    ([*TINY, "model.channels=[4,8,16]"], "model.channels=[4, 8, 16]: give one integer, or a list of 2"),
    ([*TINY, "model.channels=0"], "model.channels=0"),
    ([*TINY, "trainer.device=tpu"], "trainer.device=tpu: use auto, cpu, cuda or cuda:N"),
    ([*TINY, "smoother=densenet", "smoother.b_per_step=false"], "smoother.b_per_step=false"),
    ([*TINY, "dataset.val_size=1000"], "dataset.val_size"),
    ([*TINY, "trainer.batch_size=1000"], "trainer.batch_size=1000 is larger than the 64 training images"),
    ([*TINY, "model.smoothing_steps=[1,1,1,1,1,1,1]"], "32-px images reach 1x1 at level 6"),
    ([*TINY, "trainer.precision=fp8"], "trainer.precision=fp8: use one of fp32, bf16, fp16"),
])
def test_bad_configuration_is_one_line(tmp_path, arguments, message):
    result = cli("train", *arguments, cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("[")]
    assert 1 <= len(lines) <= 2 and lines[0].startswith("mgnet train: error: ")
    assert message in lines[0]


@pytest.mark.process
def test_full_error_still_shows_the_traceback(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "mgnet"
    result = subprocess.run([str(script), "train", *TINY, "model.channels=0"], cwd=tmp_path, text=True,
                            capture_output=True, env={**os.environ, "HYDRA_FULL_ERROR": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_a_missing_extra_names_the_pip_install(tmp_path):
    import importlib.util

    import pytest

    if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher"):
        pytest.skip("the slurm extra is installed here")
    line = one_line_error(cli("train", "hydra/launcher=submitit_slurm", cwd=tmp_path, check=False), "train")
    assert "needs an extra that is not installed" in line
    result = cli("train", "hydra/launcher=submitit_slurm", cwd=tmp_path, check=False)
    assert 'pip install "mgnet[slurm]"' in result.stderr
