#!/usr/bin/env bash
# Every figure of benchmarks/README.md's results table, measured in one run on this machine:
# gradscope's three workloads on each CPU backend (and wgpu), the peers in TensorFlow and JAX,
# and numpy's sgemm ceiling. Run from the repository root:
#
#   benchmarks/compare.sh [VENV]      # VENV: the peers' virtual environment (.venv-peers)
#
# Set-up of the venv: benchmarks/peers/README.md. Optional parts run when they can:
# `--features blas` (needs libopenblas-dev) and wgpu (needs a Vulkan device, e.g. lavapipe).
set -uo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-peers}"
PY="$VENV/bin/python"
REPEAT="${REPEAT:-5}"

echo "# $(date -u +%Y-%m-%dT%H:%MZ)  $(nproc) cores  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
cargo build --release -q || exit 1
GS="${CARGO_TARGET_DIR:-target}/release/gradscope"

peak() { # peak resident memory of a command, in MB
    /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.1f MB", $1 / 1024}'
}

echo "## 1. seed experiments, process start to report"
for b in ndarray flex; do
    $GS bench seed --backend "$b" --repeat "$REPEAT" | tail -1 | sed "s/^/$b /"
    echo "$b peak $(peak $GS run --all --no-record --backend "$b")"
done
if [ -x "$PY" ]; then
    for i in 1 2 3; do
        for s in 1 2 3; do
            t0=$(date +%s.%N)
            mem=$(peak "$PY" "benchmarks/peers/seed_example_$s.py")
            echo "tf seed_example_$s run $i: $(awk "BEGIN { printf \"%.2f\", $(date +%s.%N) - $t0 }") s, peak $mem"
        done
    done
fi

echo "## 2. forward + backward throughput, 1024 x 16 x 512"
[ -x "$PY" ] && "$PY" benchmarks/peers/sgemm_numpy.py
for b in ndarray flex; do
    $GS bench throughput --backend "$b" --repeat "$REPEAT" | grep "^throughput" | sed "s/^/$b /"
done
if cargo build --release -q --features blas 2>/dev/null; then
    $GS bench throughput --backend ndarray --repeat "$REPEAT" | tail -1 |
        sed "s/^/ndarray+openblas /"
    OPENBLAS_CORETYPE=SkylakeX $GS bench throughput --backend ndarray \
        --repeat "$REPEAT" | tail -1 | sed "s/^/ndarray+openblas (OPENBLAS_CORETYPE=SkylakeX) /"
    cargo build --release -q
fi

echo "## 3. 1000-trial sweep of the seed's deep network"
for b in ndarray flex; do
    $GS bench sweep --backend "$b" --repeat "$REPEAT" | tail -1 | sed "s/^/$b /"
    $GS bench sweep --backend "$b" --repeat "$REPEAT" --stack 1 | tail -1 | sed "s/^/$b --stack 1 /"
done
if [ -x "$PY" ]; then
    "$PY" benchmarks/peers/throughput_jax.py 2>/dev/null
    "$PY" benchmarks/peers/throughput_tf.py 2>/dev/null
fi

echo "## 4. 1000 SGD steps of the seed's deep network, 10 classes, batch 32"
for b in ndarray flex; do
    $GS bench train --backend "$b" --repeat "$REPEAT" | tail -1 | sed "s/^/$b /"
done
if [ -x "$PY" ]; then
    "$PY" benchmarks/peers/train_jax.py 2>/dev/null
    "$PY" benchmarks/peers/train_jax_scan.py 2>/dev/null
    "$PY" benchmarks/peers/train_tf.py 2>/dev/null
fi

echo "## 5. the notebook's sweep (configs/sweeps/10), 20 trials per point, whole process"
for b in flex ndarray; do
    /usr/bin/time -f "$b %e s, peak %M KB" $GS run configs/sweeps/10-sweep-activation-init-depth.toml \
        --backend "$b" --out "$(mktemp -d)" 2>&1 >/dev/null | tail -1
done
if [ -x "$PY" ]; then
    # JAX's default random generator (threefry) with the ways of organising the jit, then
    # with the faster `rbg` generator: the fastest of them is the peer (`shared` with rbg,
    # on 2026-12-03).
    "$PY" benchmarks/peers/sweep_notebook_jax.py 20 fused 2>/dev/null
    "$PY" benchmarks/peers/sweep_notebook_jax.py 20 split 2>/dev/null
    "$PY" benchmarks/peers/sweep_notebook_jax.py 20 shared 2>/dev/null
    JAX_DEFAULT_PRNG_IMPL=rbg "$PY" benchmarks/peers/sweep_notebook_jax.py 20 split 2>/dev/null
    JAX_DEFAULT_PRNG_IMPL=rbg "$PY" benchmarks/peers/sweep_notebook_jax.py 20 shared 2>/dev/null
fi

echo "## wgpu seed suite (Mesa shader cache warm, then cold)"
if $GS bench seed --backend wgpu --repeat 1 >/dev/null 2>&1; then
    $GS bench seed --backend wgpu --repeat 3 | tail -1 | sed "s/^/wgpu warm /"
    MESA_SHADER_CACHE_DISABLE=true $GS bench seed --backend wgpu --repeat 3 | tail -1 | sed "s/^/wgpu cold /"
else
    echo "wgpu: no adapter"
fi
