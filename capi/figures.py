#!/usr/bin/env python3
"""Wall time and peak RSS of real workloads under glibc, slabpool and the
Debian peers (libmimalloc2.0, libjemalloc2, libtcmalloc-minimal4) via
LD_PRELOAD, interleaved in one run (each round runs every allocator once,
in rotating order), medians over the rounds. Not part of CI: the peers are
installed by hand (`apt-get install -y libmimalloc2.0 libjemalloc2
libtcmalloc-minimal4`); a missing one is skipped with a notice. Needs GNU
time (/usr/bin/time) for peak RSS.

    python3 capi/figures.py [--rounds 5] [--only python,micro,pairs]
    python3 capi/figures.py --only fifo,strings,alloc-only   # the C patterns

Workloads:
- python: capi/tests/py/workload.py (scale 2) with PYTHONMALLOC=malloc;
- micro:  capi/c/micro.c, 2 threads x 50M random malloc/free, cross-thread
          frees;
- pairs:  capi/c/pairs.c random, 50M single-thread pairs (8..519 B, 1,000
          live);
- fifo:   capi/c/fifo.cc, 30M C++ `new char[]`/`delete[]` of Pareto sizes
          through a FIFO of 10,000;
- strings: capi/c/strings.c, 20M steps: strings grown by a `realloc` per
          append of 1..64 B up to 4 KiB, and `calloc`'d arrays;
- alloc-only: capi/c/alloc_only.c, 20M `malloc`s of 8..263 B, none freed.

Prints a markdown table of medians: wall seconds and their ratio to
slabpool's (above 1: slower than slabpool), the spread (slowest / fastest
run) so noisy cells show, CPU seconds (user + system, all threads) and
their ratio, and peak RSS (MiB). Every allocator's output must
match glibc's.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEERS = {
    "mimalloc": "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
    "jemalloc": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "tcmalloc": "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
}


def build_library():
    out = subprocess.run(
        ["cargo", "build", "--release", "-p", "slabpool-capi",
         "--message-format", "json-render-diagnostics"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "slabpool":
            for f in msg["filenames"]:
                if f.endswith("libslabpool.so"):
                    return f
    sys.exit("no libslabpool.so built")


def compile_c(name, outdir, compiler="cc", ext=".c"):
    exe = os.path.join(outdir, name)
    subprocess.run([compiler, "-O2", "-pthread", os.path.join(HERE, "c", name + ext), "-o", exe],
                   check=True)
    return exe


def run_once(argv, preload, env_extra):
    """Runs argv; returns (wall seconds, peak RSS KiB, CPU seconds, stdout).

    The program is started through /usr/bin/time (GNU time, which reports
    the peak RSS): a peak RSS read from this Python process's wait4 would
    include its own, since Linux carries the high-water mark across exec.
    LD_PRELOAD is given to the program only (through env), not to time."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.update(env_extra)
    pre = ["env", "LD_PRELOAD=" + preload] if preload else []
    cmd = ["/usr/bin/time", "-f", "cpu %U %S maxrss %M", "-o", "/tmp/slabpool-figures.time"] + pre + argv
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit("%s failed under %s: status %d" % (argv, preload or "glibc", proc.returncode))
    with open("/tmp/slabpool-figures.time") as f:
        words = f.read().split()
    i = words.index("cpu")
    cpu = float(words[i + 1]) + float(words[i + 2])
    rss = int(words[words.index("maxrss") + 1])
    return wall, rss, cpu, proc.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="python,micro,pairs")
    args = ap.parse_args()

    outdir = os.path.join(ROOT, "target", "capi-figures")
    os.makedirs(outdir, exist_ok=True)
    allocators = {"glibc": None, "slabpool": build_library()}
    for name, path in PEERS.items():
        if os.path.exists(path):
            allocators[name] = path
        else:
            print("NOTICE: %s not installed (%s): skipped" % (name, path), file=sys.stderr)

    python = subprocess.run([sys.executable, "-c", "import sys; print(sys.executable)"],
                            check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
    workloads = {
        "python": (lambda: [python, os.path.join(HERE, "tests", "py", "workload.py"), "2"],
                   {"PYTHONMALLOC": "malloc"}),
        "micro": (lambda: [compile_c("micro", outdir), "2", "50000000"], {}),
        "pairs": (lambda: [compile_c("pairs", outdir), "random", "50000000"], {}),
        "fifo": (lambda: [compile_c("fifo", outdir, "c++", ".cc"), "30000000"], {}),
        "strings": (lambda: [compile_c("strings", outdir), "20000000"], {}),
        "alloc-only": (lambda: [compile_c("alloc_only", outdir), "20000000"], {}),
    }
    chosen = [w for w in args.only.split(",") if w]
    unknown = [w for w in chosen if w not in workloads]
    if unknown:
        sys.exit("unknown workload(s): %s (known: %s)" % (", ".join(unknown), ", ".join(workloads)))
    # Build only what is asked for.
    workloads = {w: (make(), env) for w, (make, env) in workloads.items() if w in chosen}

    results = {(w, a): [] for w in chosen for a in allocators}
    names = list(allocators)
    for r in range(args.rounds):
        for w in chosen:
            argv, env = workloads[w]
            order = names[r % len(names):] + names[:r % len(names)]
            expected = None
            for a in order:
                wall, rss, cpu, out = run_once(argv, allocators[a], env)
                results[(w, a)].append((wall, rss, cpu))
                if expected is None:
                    expected = out
                elif out != expected:
                    sys.exit("%s: output under %s differs" % (w, a))
                print("round %d %-7s %-9s %7.3f s %7.3f cpu s %8.1f MiB"
                      % (r + 1, w, a, wall, cpu, rss / 1024), file=sys.stderr)

    print("| workload | allocator | wall s | vs slabpool | spread | CPU s | vs slabpool "
          "| peak RSS MiB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for w in chosen:
        base = statistics.median(t for t, _, _ in results[(w, "slabpool")])
        base_cpu = statistics.median(c for _, _, c in results[(w, "slabpool")])
        for a in names:
            times = [t for t, _, _ in results[(w, a)]]
            cpus = [c for _, _, c in results[(w, a)]]
            rss = statistics.median(m for _, m, _ in results[(w, a)]) / 1024
            med, cpu = statistics.median(times), statistics.median(cpus)
            print("| %s | %s | %.3f | %.2f | %.2f | %.3f | %.2f | %.1f |"
                  % (w, a, med, med / base, max(times) / min(times), cpu, cpu / base_cpu, rss))

if __name__ == "__main__":
    main()
