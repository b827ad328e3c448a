#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md ("GPU"), prepared to run as one call on a lent GPU machine
# whose Python has torch, tensorboard, tqdm and matplotlib but not hydra-core or omegaconf.
#
#   bash scripts/device_check.sh prepare   # here: pure-Python wheels into .whl/, the CIFAR-10 subset into .devdata/
#   bash scripts/device_check.sh run       # there (carry .whl and .devdata): figures into $OUT (or ./device-out)
#
# `run` measures, in this order (about 6 minutes on an H100):
#   1. scripts/bench.py, MgNet[2,2,2,2]-256 on CIFAR-10-shaped data: fp32 eager NCHW at batch 128
#      (the plain path), then trainer=fast (configs/trainer/fast.yaml: bf16 + channels-last +
#      compile) at batch 128 and at batch 512;
#   2. scripts/compare_fast.py on the real CIFAR-10 subset: the plain path against trainer=fast,
#      same seed, a few epochs, learning curves side by side.
# A dry run on a CPU: MGNET_CHECK_DEVICE=cpu MGNET_CHECK_MODEL="model.channels=8 model.smoothing_steps=[1,1]"
# MGNET_CHECK_BENCH="--steps 2 --rounds 1" MGNET_CHECK_EPOCHS=2 (with the project's venv first on PATH;
# 2 epochs: the cosine warm-up takes one). On a CPU without AVX-512 BF16 add trainer.precision=fp32 to
# MGNET_CHECK_MODEL: bf16 matmuls fall back to a reference kernel there (one bench row ran over 25 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

prepare() {
    local exclude
    exclude="$(git rev-parse --git-path info/exclude)"  # .git is a file in a worktree
    mkdir -p "$(dirname "$exclude")"
    grep -qxF "/.whl/" "$exclude" 2>/dev/null || echo "/.whl/" >> "$exclude"
    grep -qxF "/.devdata/" "$exclude" 2>/dev/null || echo "/.devdata/" >> "$exclude"
    rm -rf .whl && mkdir -p .whl
    python3 -m pip download --no-deps --only-binary=:all: -d .whl hydra-core==1.3.8 omegaconf==2.3.1
    python3 -m pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3  # published as a source archive only
    local data="${MGNET_SHARED_DATA:-../shared/data}/cifar10-mini"
    rm -rf .devdata && mkdir -p .devdata && cp -r "$data" .devdata/
    du -sh .whl .devdata
}

run() {
    local out="${OUT:-device-out}" device="${MGNET_CHECK_DEVICE:-cuda}"
    mkdir -p "$out" /tmp/site
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1 || true
    python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')" | tee -a "$out/gpu.txt"
    local bench="python3 scripts/bench.py trainer.device=$device ${MGNET_CHECK_MODEL:-} --rounds 3 --markdown ${MGNET_CHECK_BENCH:-}"
    {
        $bench trainer.batch_size=128 trainer.channels_last=false
        echo
        $bench trainer=fast trainer.batch_size=128
        echo
        $bench trainer=fast trainer.batch_size=512
    } > "$out/bench.md" 2> "$out/bench.log"
    cat "$out/bench.md"
    MGNET_DATA_DIR="$PWD/.devdata/cifar10-mini" python3 scripts/compare_fast.py --output /tmp/compare \
        --fast trainer=fast -- \
        dataset=cifar10 trainer.device="$device" ${MGNET_CHECK_MODEL:-} trainer.epochs="${MGNET_CHECK_EPOCHS:-8}" \
        scheduler=cosine scheduler.warmup_epochs=1 optimizer.lr=0.05 trainer.batch_size=128 \
        > "$out/compare.md" 2> "$out/compare.log"
    cat "$out/compare.md"
}

# The full CIFAR-10 on the GPU (docs/results.md, "On a GPU"), in two calls of the device tool, the
# second made at once while the machine is warm (it waits 30 s):
#   bash scripts/device_check.sh prepare-full DIR  # here: DIR/cifar-10-batches-py into .devfull1, .devfull2
#   bash scripts/device_check.sh stage             # call 1 (carry .whl .devfull1): keeps part 1 in /tmp,
#                                                  # a CUDA smoke run and speed rows (bench.md)
#   bash scripts/device_check.sh full              # call 2 (carry .whl .devfull2): unpacks and checks the
#                                                  # data, then FULL_RUNS below in order until the deadline
prepare_full() {
    local exclude
    exclude="$(git rev-parse --git-path info/exclude)"
    for path in /.devfull1/ /.devfull2/; do grep -qxF "$path" "$exclude" 2>/dev/null || echo "$path" >> "$exclude"; done
    rm -rf .devfull1 .devfull2
    python3 scripts/device_data.py pack "$1/cifar-10-batches-py" .devfull1 .devfull2
}

setup() {  # there: the carried wheels, the GPU's name, unbuffered output
    OUT="${OUT:-device-out}"; mkdir -p "$OUT" /tmp/site
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
    { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
      python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')"
      lscpu | grep 'Model name' || true; } >> "$OUT/gpu.txt"
}

stage() {
    setup
    rm -rf /tmp/devfull1 && cp -r .devfull1 /tmp/devfull1
    local device="${MGNET_CHECK_DEVICE:-cuda}"
    python3 -m mgnet_cli train experiment=mgnet_cifar10_fast dataset=synthetic trainer=smoke \
        trainer.precision=auto trainer.device="$device" hydra.run.dir=/tmp/smoke > "$OUT/stage.log" 2>&1
    local bench="python3 scripts/bench.py trainer.device=$device ${MGNET_CHECK_MODEL:-} --markdown ${MGNET_CHECK_BENCH:---rounds 2 --steps 20}"
    {
        timeout 50 $bench trainer.precision=fp32 trainer.batch_size=512
        echo
        timeout 50 $bench trainer.precision=auto trainer.batch_size=512
    } > "$OUT/bench.md" 2>> "$OUT/stage.log" || echo "bench stopped: see stage.log" >> "$OUT/bench.md"
    cat "$OUT/gpu.txt" "$OUT/bench.md"
}

# name | overrides of `mgnet train`, in the order they run. The full data, the GPU's default precision
# unless a run says otherwise.
FULL_RUNS=(
    "fast_auto_s0|experiment=mgnet_cifar10_fast seed=0"
    "fast_fp32_s0|experiment=mgnet_cifar10_fast seed=0 trainer.precision=fp32"
    "fast_auto_s1|experiment=mgnet_cifar10_fast seed=1"
    "resnet18_e4|experiment=resnet18_cifar10 trainer.epochs=4 scheduler=cosine scheduler.warmup_epochs=1 seed=0"
    "mgnet256_e4|experiment=mgnet_cifar10 trainer.epochs=4 scheduler=cosine scheduler.warmup_epochs=1 seed=0"
    "smoother_resnet|smoother=resnet"
    "smoother_densenet|smoother=densenet"
    "smoother_chebyshev|smoother=chebyshev"
    "fast_auto_e20|experiment=mgnet_cifar10_fast seed=0 trainer.epochs=20"
    "fast_auto_e40|experiment=mgnet_cifar10_fast seed=0 trainer.epochs=40"
    # what budget 94 % takes, measured rather than extrapolated (docs/results.md: ~320 epochs of the preset;
    # at the H200's 1.3 s an epoch about 420 s, 210 s for 160, 70 s for the wide model's 40)
    "fast_auto_e320|experiment=mgnet_cifar10_fast seed=0 trainer.epochs=320"
    "fast_auto_e160|experiment=mgnet_cifar10_fast seed=0 trainer.epochs=160"
    # airbench94's alternating flips on the preset (no difference on the CPU subset at 6 epochs)
    "fast_alt_s0|experiment=mgnet_cifar10_fast seed=0 dataset.augmentation.flip_alternating=true"
    "fast_alt_s1|experiment=mgnet_cifar10_fast seed=1 dataset.augmentation.flip_alternating=true"
    # the preset is launch-bound on an H200 (5 % of the bf16 conv peak): fewer, fused kernels through torch.compile
    "fast_compile_s0|experiment=mgnet_cifar10_fast seed=0 trainer.compile=true"
    "wide_auto_e40|experiment=mgnet_cifar10_fast seed=0 model.channels=[32,128,256,512] trainer.epochs=40"
)
# MGNET_CHECK_RUNS="name name ...": only those entries, in that order (e.g. the two budget runs above);
# `bash scripts/device_check.sh runs` lists what `full` would run
# docs/results.md's smoother table, as run on the CPU
SMOOTHERS="dataset=cifar10 model.channels=32 model.smoothing_steps=[2,2,2,2] trainer.epochs=4 scheduler=cosine scheduler.warmup_epochs=1 seed=0"

chosen_runs() {  # RUNS: FULL_RUNS, or the entries MGNET_CHECK_RUNS names, in its order; an unknown name stops here
    RUNS=("${FULL_RUNS[@]}")
    [[ -n ${MGNET_CHECK_RUNS:-} ]] || return 0
    local wanted entry found
    RUNS=()
    for wanted in $MGNET_CHECK_RUNS; do
        found=""
        for entry in "${FULL_RUNS[@]}"; do [[ ${entry%%|*} == "$wanted" ]] && { RUNS+=("$entry"); found=1; }; done
        [[ -n $found ]] || { echo "MGNET_CHECK_RUNS: no run named '$wanted' (the names: ${FULL_RUNS[*]%%|*})" >&2; exit 2; }
    done
}

full() {
    local deadline=$(( $(date +%s) + ${MGNET_CHECK_SECONDS:-520} ))
    chosen_runs
    setup
    [[ -d /tmp/devfull1 ]] || { echo "no /tmp/devfull1: the stage call's machine was given back" | tee "$OUT/full.log"; exit 1; }
    local data=/tmp/cifar10-full device="${MGNET_CHECK_DEVICE:-cuda}"
    python3 scripts/device_data.py unpack /tmp/devfull1 .devfull2 "$data" | tee "$OUT/full.log"
    local entry
    for entry in "${RUNS[@]}"; do
        local name="${entry%%|*}" overrides="${entry#*|}" left=$(( deadline - $(date +%s) ))
        [[ $name == smoother_* ]] && overrides="$SMOOTHERS $overrides"
        (( left > 20 )) || { echo "== $name: skipped, ${left} s left" >> "$OUT/full.log"; continue; }
        echo "== $name ($left s left): $overrides" >> "$OUT/full.log"
        # shellcheck disable=SC2086
        MGNET_DATA_DIR="$data" timeout "$left" python3 -m mgnet_cli train $overrides trainer.device="$device" \
            ${MGNET_CHECK_MODEL:-} hydra.run.dir="/tmp/runs/$name" >> "$OUT/full.log" 2>&1 \
            || echo "== $name: exit $?" >> "$OUT/full.log"
        tar -czf "$OUT/runs.tgz" --exclude='*.pt' -C /tmp runs
    done
    python3 -m mgnet_cli report /tmp/runs --output /tmp/report >> "$OUT/full.log" 2>&1 || true
    cp /tmp/report/report.md "$OUT/report.md" 2>/dev/null || true
    grep -E "^== |final|test acc|images/s \(" "$OUT/full.log" | tail -60
}

# Issue 23's CUDA sparse run, one call (carry .whl): the jumps matrix (1/10^3 per box) written by
# `mgnet solve problem.save_matrix`, then `mgnet solve problem=matrix` on it for each smoother, the cycle on
# the GPU (torch sparse CSR; Gauss-Seidel's triangular solves stay on the CPU) and on the host's CPU, the
# same setup; the table read back from each run's results.json (amg.md in $OUT). Dry-run on a CPU (46 s):
# OUT=/tmp/dcamg MGNET_CHECK_DEVICE=cpu MGNET_CHECK_AMG_N=63 bash scripts/device_check.sh amg
AMG_SMOOTHERS="${MGNET_CHECK_AMG_SMOOTHERS:-l1_jacobi chebyshev gauss_seidel}"
amg() {
    setup
    local device="${MGNET_CHECK_DEVICE:-cuda}" n="${MGNET_CHECK_AMG_N:-1023}" folder=/tmp/amg smoother place
    rm -rf "$folder" && mkdir -p "$folder"
    # one cycle of the structured solve: it is the written matrix that is wanted (the exit is "not converged")
    python3 -m mgnet_cli solve problem=diffusion problem.coefficient=jumps problem.n="$n" solver.max_cycles=1 \
        solver.device=cpu problem.save_matrix="$folder/jumps.npz" hydra.run.dir="$folder/write" > "$OUT/amg.log" 2>&1 || true
    [[ -f $folder/jumps.npz ]] || { echo "the matrix was not written: see amg.log"; tail -5 "$OUT/amg.log"; exit 1; }
    for smoother in $AMG_SMOOTHERS; do
        for place in "$device" cpu; do
            echo "== ${place}_$smoother" >> "$OUT/amg.log"
            timeout "${MGNET_CHECK_AMG_SECONDS:-240}" python3 -m mgnet_cli solve problem=matrix problem.file="$folder/jumps.npz" \
                problem.amg.smoother="$smoother" solver.device="$place" hydra.run.dir="$folder/runs/${place}_$smoother" \
                >> "$OUT/amg.log" 2>&1 || echo "== ${place}_$smoother: exit $?" >> "$OUT/amg.log"
        done
    done
    python3 - "$folder/runs" > "$OUT/amg.md" <<'TABLE'
import json, sys
from pathlib import Path
print("| run | device | status | iterations | factor | setup s | solve s | s / iteration |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for run in sorted(Path(sys.argv[1]).glob("*/results.json")):
    r = json.loads(run.read_text())
    print(f"| {run.parent.name} | {r['device']} | {r['status']} | {r['cycles']} | {r['convergence_factor']:.3f} | "
          f"{r['setup_time_s']:.2f} | {r['solve_time_s']:.3f} | {r['time_per_cycle_s']:.4f} |")
TABLE
    cat "$OUT/gpu.txt" "$OUT/amg.md"
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    prepare-full) prepare_full "${2:?usage: prepare-full DIR (holding cifar-10-batches-py/)}" ;;
    stage) stage ;;
    full) full ;;
    amg) amg ;;
    runs) chosen_runs; printf '%s\n' "${RUNS[@]}" ;;  # what `full` would run, without running it
    *) echo "usage: bash scripts/device_check.sh prepare|run|prepare-full DIR|stage|full|runs|amg" >&2; exit 2 ;;
esac
