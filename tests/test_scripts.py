"""The measurement scripts under scripts/ run end to end and count what they claim to count."""

import importlib.util
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mgnet_cli.pde.learned_smoother import LearnedKernels
from mgnet_cli.pde.smoother_learning import with_kernels
from mgnet_cli.pde.solve import Multigrid
from tests.helpers import TINY

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def script(name: str, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Runs scripts/<name> with this Python; with ``check``, a failure fails the test with its output."""
    result = subprocess.run([sys.executable, str(SCRIPTS / name), *args], cwd=cwd, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0 or not check, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# V(1,1) at n = 63 (levels 63, 31, 15 above the 7 x 7 solve): the finest level forms f - A u after
# smoothing, before post-smoothing and after the cycle (3 A), and restricts and prolongs once; each
# coarser level does the same but the last (2 A + R + P = 4 passes) at a quarter of the points.
JACOBI_V11 = (3 + 1 + 1) + 4 / 4 + 4 / 16
LEARNED_K = 2 * (1 + 1 / 4 + 1 / 16)  # one kernel pass before, one after the coarse correction


@pytest.mark.parametrize("learned, total, finest", [
    (False, JACOBI_V11, {"A": 3, "R": 1, "P": 1}),
    (True, JACOBI_V11 + LEARNED_K, {"A": 3, "K": 2, "R": 1, "P": 1}),
])  # fmt: skip
def test_bench_learned_counts_every_stencil_pass(monkeypatch, learned, total, finest):
    monkeypatch.syspath_prepend(str(SCRIPTS))  # bench_learned imports bench_solve, as when run
    bench_learned = load("bench_learned")
    multigrid = with_kernels(Multigrid(), LearnedKernels()) if learned else Multigrid()
    counted_total, counted_finest = bench_learned.count_operations(63, multigrid)
    assert counted_total == pytest.approx(total) and counted_finest == finest


def test_bench_solve_times_each_solve_and_counts_idle_starts():
    bench_solve = load("bench_solve")
    result, times, idle = bench_solve.timed_solves(31, bench_solve.multigrid("jacobi", "v", 1, 1, 0.8), 1e-8,
                                                   repeats=2, wait_s=0.0)
    assert result.converged and len(times) == 2 and all(t > 0 for t in times)
    assert idle == 0  # no time given to wait for an idle machine: no start counts as idle


@pytest.mark.process
def test_bench_prints_every_figure(tmp_path):
    out = script("bench.py", "model.channels=8", "model.smoothing_steps=[1,1]", "trainer.batch_size=16",
                 "trainer.device=cpu", "--steps", "2", "--rounds", "1", "--markdown", cwd=tmp_path).stdout
    rows = dict(line.strip("|").split("|")[:2] for line in out.splitlines() if line.startswith("| ")
                and "---" not in line and "measure" not in line)
    rows = {name.strip(): value.strip() for name, value in rows.items()}
    assert len(rows) == 16, rows
    forward, training = float(rows["forward GFLOPs per image"]), float(rows["training GFLOPs per image (fwd + bwd)"])
    assert 0 < forward and 2.5 * forward < training < 3.5 * forward  # backward ~ twice the forward
    assert float(rows["training images/s (best step)"]) > 0
    assert 0 < float(rows["MFU against the conv peak (best step)"].rstrip("%"))  # a ratio of two timings:
    # on a machine loaded by others it is not bounded (the FLOP count itself is tested exactly below)
    # both evaluation rates are measured (which one is larger is a timing: on a loaded host either)
    assert float(rows["evaluation images/s, flip TTA"]) > 0 and float(rows["evaluation images/s (batch 512)"]) > 0


@pytest.mark.process
def test_compare_fast_trains_both_paths_from_the_same_start(tmp_path):
    """channels-last fp32 computes what NCHW does: the two runs' losses agree to float tolerance."""
    out = script("compare_fast.py", "--output", str(tmp_path / "runs"), "--fast", "trainer.channels_last=true",
                 "--", *TINY, "trainer.epochs=2", cwd=tmp_path).stdout
    epochs = [line for line in out.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")]
    assert len(epochs) == 2, out
    for line in epochs:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for pair in cells[1:3]:  # train loss, test loss: plain / fast
            plain, fast = (float(value) for value in pair.split(" / "))
            assert fast == pytest.approx(plain, abs=2e-3)
    assert (tmp_path / "runs" / "plain" / "results.json").is_file()
    assert (tmp_path / "runs" / "fast" / "results.json").is_file()


@pytest.mark.parametrize("name, args, message", [
    ("bench.py", ["model.chanels=64"], "bench.py: error: model.chanels: no such key"),
    ("bench.py", ["trainer.precision=fp8", "trainer.device=cpu"], "trainer.precision=fp8: use one of fp32, bf16, fp16"),
    ("compare_fast.py", ["--fast", "trainer.precision=fp8", "--", *TINY],
     "compare_fast.py: the fast run failed: mgnet train: error: trainer.precision=fp8: use one of"),
    ("train_interpolation.py", ["--steps", "-1"], "train_interpolation.py: error: --steps=-1: give an integer from 0"),
])  # fmt: skip
@pytest.mark.process
def test_scripts_say_what_is_wrong_in_a_line(tmp_path, name, args, message):
    result = script(name, *args, cwd=tmp_path, check=False)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_device_data_mosaics_are_lossless_and_place_image_i_at_its_tile():
    device_data = load("device_data")
    rows = torch.randint(0, 256, (10_000, 3 * 32 * 32), generator=torch.Generator().manual_seed(0),
                         dtype=torch.uint8).numpy()
    mosaic = device_data.to_mosaic(rows)
    assert mosaic.shape == (3200, 3200, 3)
    image = 4321  # tile (43, 21): its red plane's first row is the row's first 32 values
    assert (mosaic[43 * 32, 21 * 32:22 * 32, 0] == rows[image, :32]).all()
    assert (mosaic[43 * 32 + 31, 21 * 32 + 31] == rows[image, [1023, 2047, 3071]]).all()  # last pixel, R G B
    assert (device_data.from_mosaic(mosaic) == rows).all()


@pytest.mark.slow  # packs 20,000 images as WebP: seconds
def test_device_data_unpacks_what_it_packed_and_refuses_a_changed_pixel(tmp_path, monkeypatch):
    device_data = load("device_data")
    monkeypatch.setattr(device_data, "PARTS", (("data_batch_1",), ("test_batch",)))  # 2 of the 6 batches
    generator = torch.Generator().manual_seed(1)
    source = tmp_path / "cifar-10-batches-py"
    source.mkdir()
    for names in device_data.PARTS:
        for name in names:  # smooth images, as the real ones, so WebP has something to compress
            base = torch.randint(0, 200, (10_000, 3, 1, 1), generator=generator)
            noise = torch.randint(0, 8, (10_000, 3, 32, 32), generator=generator)
            rows = (base + noise).to(torch.uint8).reshape(10_000, -1).numpy()
            labels = torch.randint(0, 10, (10_000,), generator=generator).tolist()
            with (source / name).open("wb") as file:
                pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": rows}, file)
    (source / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a"] * 10}))
    parts = [tmp_path / "part1", tmp_path / "part2"]
    device_data.pack(source, parts)
    device_data.unpack(parts, tmp_path / "out")
    for name in (*device_data.PARTS[0], *device_data.PARTS[1], "batches.meta"):
        original, rebuilt = (folder / name for folder in (source, tmp_path / "out" / "cifar-10-batches-py"))
        if name == "batches.meta":
            assert rebuilt.read_bytes() == original.read_bytes()
            continue
        before, after = (pickle.loads(path.read_bytes(), encoding="bytes") for path in (original, rebuilt))
        assert (before[b"data"] == after[b"data"]).all() and before[b"labels"] == after[b"labels"]
    (parts[1] / "test_batch_labels.npy").write_bytes((parts[0] / "data_batch_1_labels.npy").read_bytes())
    with pytest.raises(SystemExit, match="test_batch: the unpacked pixels or labels differ"):
        device_data.unpack(parts, tmp_path / "again")


def test_bench_default_solve_builds_the_5_point_matrix_and_solves_it_with_pyamg():
    pytest.importorskip("pyamg", reason="the [bench] extra is not installed")
    bench = load("bench_default_solve")
    matrix = bench.poisson_matrix(3)
    assert matrix.shape == (9, 9) and matrix.diagonal().tolist() == [4.0] * 9
    assert matrix[4].toarray().ravel().tolist() == [0, -1, 0, -1, 4, -1, 0, -1, 0]  # the centre's 4 neighbours
    seconds, cycles = bench.pyamg_seconds(bench.poisson_matrix(31), torch.ones(31 * 31, dtype=torch.float64).numpy())
    assert seconds > 0 and 1 <= cycles <= 20


@pytest.mark.process
def test_device_check_runs_the_entries_named_in_their_order_and_refuses_an_unknown_one(tmp_path):
    """`MGNET_CHECK_RUNS` picks `full`'s runs (the lent GPU time is short: a session runs what it still
    needs); `runs` lists them without running, and a name not in the list stops before any work."""
    def device_check(*args: str, runs: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SCRIPTS / "device_check.sh"), *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "MGNET_CHECK_RUNS": runs,
                                   "OUT": str(tmp_path / "out")})

    listed = device_check("runs", runs="wide_auto_e40 fast_auto_e160")
    assert listed.returncode == 0, listed.stderr
    assert [line.split("|")[0] for line in listed.stdout.splitlines()] == ["wide_auto_e40", "fast_auto_e160"]
    assert "trainer.epochs=160" in listed.stdout.splitlines()[1]
    everything = device_check("runs", runs="")
    assert len(everything.stdout.splitlines()) >= 16 and everything.stdout.startswith("fast_auto_s0|")
    refused = device_check("full", runs="fast_auto_e160 typo")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "no run named 'typo'" in refused.stderr
    assert not (tmp_path / "out").exists()  # stopped before its set-up, which makes $OUT first


def test_the_winograd_benchmark_computes_the_convolution_it_is_timed_against():
    """scripts/bench_winograd.py's F(2x2, 3x3) is torch's 3x3 convolution (padding 1), so its
    timings compare like with like."""
    winograd = load("bench_winograd")
    generator = torch.Generator().manual_seed(1)
    x, w = torch.randn(3, 5, 8, 8, generator=generator), torch.randn(7, 5, 3, 3, generator=generator)
    torch.testing.assert_close(winograd.winograd_conv(x, w), torch.nn.functional.conv2d(x, w, padding=1),
                               rtol=1e-5, atol=1e-5)
    assert winograd.winograd_tiles(x).shape == (16, 3 * 4 * 4, 5)
