#!/usr/bin/env python3
"""Workload 2 against JAX, alternated: N rounds of `gradscope bench throughput` and then
`peers/throughput_jax.py`, each round the two one after the other, so that both see the same
minutes of a shared machine. Prints each path's medians (min-max), the ratio of the medians,
the median of the paired ratios (round by round) and in how many rounds gradscope was ahead.
The written-out pass (a training step's) is set against JAX's one network, its only peer.

usage: python3 benchmarks/throughput_rounds.py [ROUNDS] [--python VENV_PYTHON]
       [--gradscope BINARY] [--backend flex]
(from the repository root, after `cargo build --release`; the binary defaults to
$CARGO_TARGET_DIR/release/gradscope, as benchmarks/compare.sh finds it)

The standard library only; the JAX peer runs under --python (default .venv-peers/bin/python,
as benchmarks/compare.sh sets it up). Every figure of benchmarks/README.md's throughput
sections since "The step at HEAD, side by side" was taken this way.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

# (gradscope's line, JAX's line it is set against, what the path is)
PATHS = [
    ("throughput", "throughput", "one network"),
    ("throughput-stack", "throughput-stack", "stack of 4"),
    ("throughput-train", "throughput", "written out"),
]
LINE = re.compile(r"^(?:jax )?(throughput(?:-stack|-train)?)\s+([0-9.]+) GFLOP/s")


def figures(cmd):
    """The GFLOP/s lines of one run of `cmd`, by name; exits with its message if it fails."""
    try:
        run = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        sys.exit(f"cannot run {cmd[0]}: {e.strerror} (build it first, or name it)")
    if run.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed (exit {run.returncode}):\n{run.stderr.strip()}")
    found = {}
    for line in run.stdout.splitlines():
        m = LINE.match(line)
        if m:
            found[m.group(1)] = float(m.group(2))
    return found


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rounds", nargs="?", type=int, default=10)
    p.add_argument("--python", default=".venv-peers/bin/python")
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    p.add_argument("--gradscope", default=f"{target}/release/gradscope")
    p.add_argument("--backend", default="flex")
    a = p.parse_args()
    if a.rounds < 1:
        sys.exit("ROUNDS must be at least 1")
    ours_cmd = [a.gradscope, "bench", "throughput", "--backend", a.backend, "--repeat", "5"]
    jax_cmd = [a.python, "benchmarks/peers/throughput_jax.py"]
    ours, theirs = [], []
    for r in range(a.rounds):
        ours.append(figures(ours_cmd))
        theirs.append(figures(jax_cmd))
        line = "  ".join(
            f"{what} {ours[-1].get(g, float('nan')):.1f}/{theirs[-1].get(j, float('nan')):.1f}"
            for g, j, what in PATHS
        )
        print(f"round {r + 1}: {line}", flush=True)
    print(f"\n{a.rounds} rounds, GFLOP/s, gradscope {a.backend} against JAX:")
    print("| path | gradscope | JAX | ratio | paired | ahead in |")
    print("|---|---|---|---|---|---|")
    for g, j, what in PATHS:
        pairs = [(o[g], t[j]) for o, t in zip(ours, theirs) if g in o and j in t]
        if not pairs:
            print(f"| {what} | (no figures) | | | | |")
            continue
        xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
        mx, my = statistics.median(xs), statistics.median(ys)
        paired = statistics.median(x / y for x, y in pairs)
        ahead = sum(x > y for x, y in pairs)
        print(
            f"| {what} | {mx:.1f} ({min(xs):.0f}-{max(xs):.0f}) | {my:.1f} "
            f"({min(ys):.0f}-{max(ys):.0f}) | {mx / my:.2f}x | {paired:.3f} | "
            f"{ahead} of {len(pairs)} |"
        )


if __name__ == "__main__":
    main()
