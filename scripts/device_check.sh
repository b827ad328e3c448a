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

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: bash scripts/device_check.sh prepare|run" >&2; exit 2 ;;
esac
