#!/bin/sh
# The README's demo: build a calibration set from the dirty sample corpora in
# samples/raw with the whole pipeline (samples/Makefile, which includes
# ../Makefile.inc), show what each stage kept and dropped, and print the
# audit of the result.
# Usage: samples/demo.sh [BUILD_DIR]   (default: build)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
bin=$(cd "$build/bin" && pwd)

make -s -C "$here" CURATE_BIN="$bin" calib-clean
echo "== make -C samples: raw/*.jsonl -> clean -> dedupe (exact, near) -> lang-filter"
echo "   -> length-bucket -> stratified-sample -> calib.jsonl -> audit -> calibrate"
make -C "$here" CURATE_BIN="$bin" --no-print-directory calib calibrate | sed 's|'"$bin"'/||g; s/^/   /'
echo
echo "== records per stage (read = written + rejected), and why records were dropped"
for stage in clean exact dedup lang bucket sample; do
    jq -r --arg s "$stage" '"  \($s|.[0:6]) \(.records.read) read, \(.records.written) written, \(.records.rejected) rejected  \(.rejected_by_reason | to_entries | map("\(.key) \(.value)") | join(", "))"' \
        "$here/work/pool.$stage.stats.json"
done
echo
echo "== a near duplicate caught by curate-dedupe --mode near"
jq -c '{id, dup_of, similarity}' "$here/work/pool.dedup.rejects.jsonl" | head -2
echo
cat "$here/calib.audit.txt"
echo
echo "== curate calibrate: stories260K quantized with GPTQ 4-bit (groups of 32) using the set,"
echo "   evaluated on the held-out texts in samples/eval (same tokens for both models)"
cat "$here/calib.report.txt"
jq -r '.tensor_notes[]? | "   note: \(.tensor): \(.note)"' "$here/calib.report.json" | head -2
echo
echo "The set is samples/calib.jsonl; every stage's output, rejects and stats are in samples/work/."
echo "The report: samples/calib.report.json, and as a page with charts: samples/calib.report.html"
