"""What the small cache of this machine costs the routing benchmark: prints figures, asserts nothing.

``python -m bench.cache`` runs ``bench.routing`` (``--contacts 200 --no-sequential``, so each message
goes through the run without the router and the run with it) under Valgrind's cachegrind, which
counts instructions and simulates the caches, with a last-level cache of 2 MiB (what a process
here effectively gets: ``python -m bench.host``) and of 32 MiB (what ``lscpu`` reports). Each size
runs at two message counts; the difference, per message, leaves out start-up and set-up. The
counts are the simulator's, so they repeat from run to run whatever the neighbours do.

The misses the larger cache avoids, times the latency of a load beyond 2 MiB measured in the same
run, bound what the small cache costs a message: an upper bound, since a real core overlaps some
misses and prefetches sequential ones. Set against the measured time of a message, it says how
much faster the same code would be on a machine whose process gets the whole cache. Takes about
ten minutes (cachegrind runs ~45 times slower); needs ``valgrind`` and a C compiler.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from bench.host import latencies

SMALL, LARGE = 2 << 20, 32 << 20
COUNTERS = {
    "instructions": r"I\s+refs:\s+([\d,]+)",
    "D1 misses": r"D1\s+misses:\s+([\d,]+)",
    "LL misses": r"LL misses:\s+([\d,]+)",
}


def simulate(cache_bytes: int, messages: int) -> dict[str, int]:
    """cachegrind's totals for one ``bench.routing`` run."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=yes",
            f"--LL={cache_bytes},16,64",
            "--cachegrind-out-file=/dev/null",
            sys.executable,  # the interpreter itself: a wrapper script (pyenv's shim) would be what is traced
            "-m",
            "bench.routing",
            *_workload(messages),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return {name: _number(pattern, done.stderr) for name, pattern in COUNTERS.items()}


def native_ms(messages: int) -> float:
    """Milliseconds a message takes through both runs, on the real machine: 1/rate without the
    router plus 1/rate with it, from ``bench.routing``'s summary."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.routing", *_workload(messages)], capture_output=True, text=True, check=True
    )
    labels = (r"ceiling msgs/s \(no router\)", r"with router msgs/s")
    return sum(1000 / _number(rf"{label}\s+([\d,]+)", done.stdout) for label in labels)


def _number(pattern: str, output: str) -> int:
    found = re.search(pattern, output)
    if found is None:
        raise RuntimeError(f"{pattern!r} not found in: {output[-500:]}")
    return int(found[1].replace(",", ""))


def _workload(messages: int) -> list[str]:
    return ["--messages", str(messages), "--contacts", "200", "--no-sequential"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000, help="the smaller run's messages; the larger has twice")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("bench.cache needs valgrind (apt-get install valgrind)")
    runs = [(size, count) for size in (SMALL, LARGE) for count in (args.messages, 2 * args.messages)]
    with ThreadPoolExecutor(max_workers=2) as pool:  # one simulated process per core
        totals = dict(zip(runs, pool.map(lambda run: simulate(*run), runs), strict=True))
    per_message = {
        size: {
            name: (totals[size, 2 * args.messages][name] - totals[size, args.messages][name]) / args.messages
            for name in COUNTERS
        }
        for size in (SMALL, LARGE)
    }
    miss_ns = latencies((2048, 8192))[8192]
    print(f"per message, through both runs (without and with the router), from {args.messages:,} more messages:")
    print(f"  {'last-level cache':<18}{'instructions':>14}{'D1 misses':>12}{'LL misses':>12}")
    for size, counts in per_message.items():
        instructions, d1, ll = (counts[name] for name in COUNTERS)
        print(f"  {size >> 20:>6} MiB{'':<8}{instructions:>14,.0f}{d1:>12,.0f}{ll:>12,.0f}")
    avoided = per_message[SMALL]["LL misses"] - per_message[LARGE]["LL misses"]
    bound_ms, measured_ms = avoided * miss_ns / 1e6, native_ms(2 * args.messages)
    print(
        f"misses a 32 MiB cache avoids: {avoided:,.0f} a message; at {miss_ns:.0f} ns a load beyond 2 MiB "
        f"(measured now), at most {bound_ms:.2f} ms a message"
    )
    print(
        f"a message measured now, natively, through both runs: {measured_ms:.2f} ms; the small cache's share "
        f"at most {bound_ms / measured_ms:.0%}"
    )


if __name__ == "__main__":
    main()
