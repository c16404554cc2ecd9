#!/usr/bin/env python3
"""Workload 2 against JAX, alternated: N rounds of `gradscope bench throughput` and then
`peers/throughput_jax.py`, each round the two one after the other, so that both see the same
minutes of a shared machine. Prints each path's medians (min-max), the ratio of the medians,
the median of the paired ratios (round by round) and in how many rounds gradscope was ahead.
The written-out pass (a training step's) is set against JAX's one network, its only peer.

usage: python3 benchmarks/throughput_rounds.py [ROUNDS] [--python VENV_PYTHON]
       [--gradscope BINARY] [--backend flex] [--save FILE]
       python3 benchmarks/throughput_rounds.py --from FILE [FILE ...]
(from the repository root, after `cargo build --release`; the binary defaults to
$CARGO_TARGET_DIR/release/gradscope, as benchmarks/compare.sh finds it)

--save FILE appends each round to FILE as one JSON line when the round ends (the time, the
backend, XLA_FLAGS and both sides' GFLOP/s by line name), so a run cut short keeps the rounds
it finished. --from FILE ... runs nothing: it prints the table of the rounds saved in the files,
each file alone and then all of them pooled. benchmarks/rounds/ holds the rounds behind
benchmarks/README.md's throughput verdict.

The standard library only; the JAX peer runs under --python (default .venv-peers/bin/python,
as benchmarks/compare.sh sets it up) with the environment as it is, so `XLA_FLAGS=...` before
the command reaches JAX. Every figure of benchmarks/README.md's throughput sections since
"The step at HEAD, side by side" was taken this way.
"""

import argparse
import datetime
import json
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


def table(rounds, title):
    """Prints the verdict table of `rounds`, a list of (gradscope, JAX) figure dicts."""
    print(f"\n{title}:")
    print("| path | gradscope | JAX | ratio | paired | ahead in |")
    print("|---|---|---|---|---|---|")
    for g, j, what in PATHS:
        pairs = [(o[g], t[j]) for o, t in rounds if g in o and j in t]
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


def saved(path):
    """The rounds saved in `path` by --save, as (gradscope, JAX) figure dicts."""
    rounds = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                    rounds.append((dict(r["gradscope"]), dict(r["jax"])))
                except (ValueError, KeyError, TypeError) as e:
                    sys.exit(f"{path}:{n}: not a saved round ({e})")
    except OSError as e:
        sys.exit(f"cannot read {path}: {e.strerror}")
    return rounds


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rounds", nargs="?", type=int, default=10)
    p.add_argument("--python", default=".venv-peers/bin/python")
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    p.add_argument("--gradscope", default=f"{target}/release/gradscope")
    p.add_argument("--backend", default="flex")
    p.add_argument("--save", metavar="FILE", help="append each round to FILE as a JSON line")
    p.add_argument("--from", dest="sources", nargs="+", metavar="FILE",
                   help="print the table of saved rounds; run nothing")
    a = p.parse_args()
    if a.sources:
        every = []
        for path in a.sources:
            rounds = saved(path)
            if not rounds:
                sys.exit(f"{path}: no rounds")
            table(rounds, f"{path}: {len(rounds)} rounds, GFLOP/s, gradscope against JAX")
            every += rounds
        if len(a.sources) > 1:
            table(every, f"all {len(every)} rounds pooled")
        return
    if a.rounds < 1:
        sys.exit("ROUNDS must be at least 1")
    ours_cmd = [a.gradscope, "bench", "throughput", "--backend", a.backend, "--repeat", "5"]
    jax_cmd = [a.python, "benchmarks/peers/throughput_jax.py"]
    rounds = []
    for r in range(a.rounds):
        ours = figures(ours_cmd)
        theirs = figures(jax_cmd)
        rounds.append((ours, theirs))
        if a.save:
            record = {
                "ended": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "backend": a.backend,
                "xla_flags": os.environ.get("XLA_FLAGS", ""),
                "gradscope": ours,
                "jax": theirs,
            }
            try:
                with open(a.save, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
            except OSError as e:
                sys.exit(f"cannot write {a.save}: {e.strerror}")
        line = "  ".join(
            f"{what} {ours.get(g, float('nan')):.1f}/{theirs.get(j, float('nan')):.1f}"
            for g, j, what in PATHS
        )
        print(f"round {r + 1}: {line}", flush=True)
    table(rounds, f"{a.rounds} rounds, GFLOP/s, gradscope {a.backend} against JAX")


if __name__ == "__main__":
    main()
