#!/bin/sh
# The README's demo: run curate on the dirty sample corpora in samples/raw.
# Usage: samples/demo.sh [BUILD_DIR]   (default: build)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
bin=$(cd "$build/bin" && pwd)
PATH="$bin:$PATH"
out=$here/out
rm -rf "$out"
mkdir -p "$out"
cd "$here"

echo "== curate-clean: NFC, control and zero-width removal, UTF-8 repair, PII redaction, quality filters"
curate clean --on-error=skip --preset pii --preset html \
    --rejects "$out/clean.rejects.jsonl" --stats "$out/clean.stats.json" \
    -o "$out/clean.jsonl" raw/web.jsonl raw/wiki.jsonl raw/code.jsonl raw/chat.jsonl \
    raw/math.jsonl raw/multilingual.jsonl raw/stories.jsonl

echo "== curate-dedupe --mode exact"
curate dedupe --mode exact --rejects "$out/exact.rejects.jsonl" --stats "$out/exact.stats.json" \
    -o "$out/exact.jsonl" "$out/clean.jsonl"

echo "== curate-dedupe --mode near"
curate dedupe --mode near --rejects "$out/near.rejects.jsonl" --stats "$out/near.stats.json" \
    -o "$out/dedup.jsonl" "$out/exact.jsonl"

echo
echo "== what was dropped, and why"
for s in clean exact near; do
    printf '%-6s ' "$s"
    jq -c '{read: .records.read, written: .records.written, rejected: .records.rejected, why: .rejected_by_reason}' "$out/$s.stats.json"
done
echo
echo "== a near duplicate that was caught"
jq -c '{id, dup_of, similarity}' "$out/near.rejects.jsonl" | head -3
echo
echo "Outputs are in $out"
