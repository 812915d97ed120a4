#!/usr/bin/env python3
"""Throughput and peak memory of the curate filters beside reference commands.

Not a test: a benchmark.  It generates (or reuses) a JSONL corpus, then runs
each command once per repetition, single-threaded, reading the corpus and
writing to /dev/null, and reports MB/s (corpus bytes / wall seconds, best of
--reps) and peak RSS (from wait4's rusage of the child).  Reference commands
run in the same invocation so ratios are comparable on a noisy machine.

    python3 tests/bench/bench.py --build build --size-mb 200 [--only clean,dedupe-exact]
    python3 tests/bench/bench.py --build build --markdown >> docs/benchmarks.md

Requires: python3, GNU time (/usr/bin/time), awk, jq; the Llama 2 tokenizer from ../shared for the
length-bucket row (skipped without it).
"""
import argparse
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def run(cmd, corpus):
    """Run cmd (a shell string; CORPUS substituted) under GNU time and return
    (seconds, peak_rss_bytes, status).  GNU time reports the peak RSS of the
    command itself; rusage taken in a fork of this Python process would
    include Python's own pages."""
    shell_cmd = cmd.replace("CORPUS", shlex.quote(corpus))
    fmt_file = "/tmp/curate-bench-time.txt"
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-o", fmt_file, "-f", "%M", "bash", "-c", shell_cmd],
                       stdout=subprocess.DEVNULL)
    dt = time.monotonic() - t0
    with open(fmt_file) as f:
        lines = f.read().split()
    rss_kb = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    return dt, rss_kb * 1024, p.returncode


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--corpus", default=None, help="existing corpus (default: generate in /tmp)")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--only", default="", help="comma-separated row names")
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()

    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    corpus = args.corpus or f"/tmp/curate-bench-{args.size_mb}mb.jsonl"
    if not os.path.exists(corpus):
        gen = os.path.join(HERE, "gen_corpus.py")
        print(f"generating {corpus} ({args.size_mb} MB) with {gen}", file=sys.stderr)
        subprocess.check_call([sys.executable, gen, "--size-mb", str(args.size_mb), "--out", corpus])
    size = os.path.getsize(corpus)
    # Warm the page cache so the first row does not pay for the disk.
    subprocess.call(["cat", corpus], stdout=subprocess.DEVNULL)

    tok = os.path.join(args.shared, "models", "llama2-tokenizer", "tokenizer.model")
    c = lambda tool: os.path.join(bin_dir, tool)
    rows = [
        ("cat", "cat CORPUS"),
        ("awk-dedupe", "awk '!seen[$0]++' CORPUS"),
        ("jq-filter", "jq -c 'select(.text|length>0)' CORPUS"),
        ("clean", f"{c('curate-clean')} -q CORPUS"),
        ("dedupe-exact", f"{c('curate-dedupe')} -q --mode exact CORPUS"),
        ("dedupe-near", f"{c('curate-dedupe')} -q --mode near CORPUS"),
        ("length-bucket", f"{c('curate-length-bucket')} -q --tokenizer {tok} CORPUS" if os.path.exists(tok) else None),
        ("lang-filter", f"{c('curate-lang-filter')} -q CORPUS"),
        ("stratified-sample", f"{c('curate-stratified-sample')} -q --by domain --n 512 --seed 1 CORPUS"),
    ]
    only = set(filter(None, args.only.split(",")))
    env_note = "OPENBLAS_NUM_THREADS=1"
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    results = []
    for name, cmd in rows:
        if only and name not in only:
            continue
        if cmd is None:
            print(f"{name}: skipped (needs ../shared)", file=sys.stderr)
            continue
        exe = cmd.split()[0]
        if exe.startswith("/") and not os.path.exists(exe):
            print(f"{name}: skipped ({exe} is not built)", file=sys.stderr)
            continue
        best = None
        for _ in range(args.reps):
            dt, rss, st = run(cmd, corpus)
            if st != 0:
                print(f"{name}: exit status {st}", file=sys.stderr)
            if best is None or dt < best[0]:
                best = (dt, rss, st)
        dt, rss, st = best
        results.append((name, cmd.replace(bin_dir + "/", ""), dt, size / dt / 1e6, rss / 2**20, st))
        print(f"{name:18s} {dt:7.2f} s {size / dt / 1e6:8.1f} MB/s {rss / 2**20:8.1f} MiB", file=sys.stderr)

    ref = {r[0]: r for r in results}
    awk = ref.get("awk-dedupe")
    if args.markdown:
        print(f"Corpus: {size / 1e6:.1f} MB, {sum(1 for _ in open(corpus, 'rb'))} records "
              f"(`tests/bench/gen_corpus.py --size-mb {args.size_mb}`); best of {args.reps} runs; {env_note}.\n")
        print("| command | seconds | MB/s | peak RSS MiB | vs awk |")
        print("|---|---:|---:|---:|---:|")
        for name, cmd, dt, mbs, rss, st in results:
            vs = f"{mbs / awk[3]:.1f}x" if awk else ""
            flag = "" if st == 0 else f" (exit {st})"
            print(f"| `{cmd.replace(corpus, 'corpus.jsonl')}`{flag} | {dt:.2f} | {mbs:.1f} | {rss:.1f} | {vs} |")


if __name__ == "__main__":
    main()
