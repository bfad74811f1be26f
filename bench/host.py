"""The memory latency this machine gives a process: prints figures, asserts nothing.

``python -m bench.host`` follows a chain of pointers laid out in random order, one per 64-byte
cache line, over working sets from 256 KiB to 128 MiB, and prints the nanoseconds a load takes.
Where the latency jumps is the cache this process really gets, which on a shared virtual machine
can be far less than ``lscpu`` reports. Read the routing and intake figures against it: their
per-message working set (the Python heap, SQLite's pages, RE2's automaton) is larger than a few
megabytes; ``python -m bench.cache`` measures what that costs them. Needs a C compiler (``cc``):
a Python loop would measure the interpreter instead of the memory.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SIZES_KIB = (256, 1024, 2048, 4096, 8192, 16384, 32768, 131072)

PROBE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    for (int arg = 1; arg < argc; arg++) {
        size_t lines = (size_t)atol(argv[arg]) * 1024 / 64;
        char *memory = aligned_alloc(64, lines * 64);
        size_t *order = malloc(lines * sizeof *order);
        srand(42);
        for (size_t i = 0; i < lines; i++) order[i] = i;
        for (size_t i = lines - 1; i > 0; i--) {
            size_t j = ((size_t)rand() * RAND_MAX + rand()) % (i + 1), kept = order[i];
            order[i] = order[j];
            order[j] = kept;
        }
        for (size_t i = 0; i < lines; i++)
            *(void **)(memory + order[i] * 64) = memory + order[(i + 1) % lines] * 64;
        void *p = memory + order[0] * 64;
        for (size_t i = 0; i < lines; i++) p = *(void **)p;
        const size_t loads = 20000000;
        double started = seconds();
        for (size_t i = 0; i < loads; i++) p = *(void **)p;
        printf("%s %.1f %d\n", argv[arg], (seconds() - started) / loads * 1e9, p == NULL);
        free(order);
        free(memory);
    }
    return 0;
}
"""


def latencies(sizes_kib: tuple[int, ...] = SIZES_KIB) -> dict[int, float]:
    """Nanoseconds a dependent load takes, by working set in KiB."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        sys.exit("bench.host needs a C compiler (cc or gcc)")
    with tempfile.TemporaryDirectory() as tmp:
        source, binary = Path(tmp) / "probe.c", Path(tmp) / "probe"
        source.write_text(PROBE)
        subprocess.run([compiler, "-O2", "-o", str(binary), str(source)], check=True)
        done = subprocess.run([str(binary), *map(str, sizes_kib)], check=True, capture_output=True, text=True)
    return {int(size): float(nanoseconds) for size, nanoseconds, _ in map(str.split, done.stdout.splitlines())}


def main() -> None:
    measured = latencies()
    print("memory latency: one dependent load per 64-byte line, random order, 20 M loads per size")
    for size, nanoseconds in measured.items():
        print(f"  {size:>9,} KiB  {nanoseconds:6.1f} ns a load")


if __name__ == "__main__":
    main()
