"""An Optuna sweep's output, read from a log file or a pipe: no library noise, no colour codes."""

import pytest

from tests.helpers import TINY, mgnet

pytestmark = pytest.mark.process  # logging off a terminal, as a process's stdout shows it


def test_an_optuna_sweep_off_a_terminal_logs_plain_lines_without_alembic(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install -e '.[optuna]'")
    done = mgnet("train", "-m", "search=optuna", *TINY, "hydra.sweeper.n_trials=1",
                 f"hydra.sweep.dir={tmp_path / 'search'}", cwd=tmp_path)  # stdout and stderr are pipes
    output = done.stdout + done.stderr
    assert "setup plugin alembic" not in output
    assert "\x1b[" not in output  # no ANSI escape codes
    study = [line for line in done.stdout.splitlines() if "A new study created in memory" in line]
    assert len(study) == 1 and study[0].startswith("[20")  # through mgnet's handlers, in its format
