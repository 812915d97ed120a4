#!/usr/bin/env bash
# Makefile.inc: samples/Makefile builds a calibration set from raw data in
# a clean tree; a second `make` does nothing; changing N reruns only the
# stages after sampling.
set -u
: "${CURATE_BIN:?}" "${CURATE_SRC:?}" "${CURATE_TMP:?}"
command -v make >/dev/null || { echo "SKIP: make is not installed"; exit 77; }
root=$(mktemp -d "$CURATE_TMP/makefile.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/samples"
cp "$CURATE_SRC/Makefile.inc" "$root/"
cp -r "$CURATE_SRC/samples/Makefile" "$CURATE_SRC/samples/raw" "$CURATE_SRC/samples/eval" \
      "$CURATE_SRC/samples/models" "$root/samples/"
fail=0
m() { make -C "$root/samples" CURATE_BIN="$CURATE_BIN" "$@" 2>&1; }

out=$(m) || { echo "FAIL: first make failed:"; echo "$out"; exit 1; }
calib="$root/samples/calib.jsonl"
[ -s "$calib" ] || { echo "FAIL: no calib.jsonl"; fail=1; }
n=$(wc -l < "$calib")
[ "$n" -gt 100 ] && [ "$n" -le 200 ] || { echo "FAIL: calib.jsonl has $n records, expected 101..200"; fail=1; }
grep -q "Calibration set audit" "$root/samples/calib.audit.txt" || { echo "FAIL: no audit report"; fail=1; }
for stage in clean exact dedup lang bucket sample; do
    [ -s "$root/samples/work/pool.$stage.stats.json" ] || { echo "FAIL: stage $stage left no stats"; fail=1; }
done
# Every record of the set carries the fields the stages add.
python3 - "$calib" <<'PY' || fail=1
import json, sys
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    r = json.loads(line)
    missing = [k for k in ("lang", "tokens", "bucket", "domain") if k not in r]
    if missing:
        sys.exit(f"FAIL: calib.jsonl:{n} lacks {missing}")
PY

before=$(ls -l --time-style=+%s.%N "$root/samples/work" "$calib")
out=$(m)
after=$(ls -l --time-style=+%s.%N "$root/samples/work" "$calib")
if grep -q "curate " <<<"$out" || [ "$before" != "$after" ]; then
    echo "FAIL: a second make rebuilt something:"; echo "$out"; fail=1
fi
# (The option stamps are checked silently, so make prints no command at all.)
rest=$(grep -v -e "^make: Entering" -e "^make: Leaving" -e "Nothing to be done" <<<"$out")
[ -z "$rest" ] || { echo "FAIL: second make printed commands:"; echo "$rest"; fail=1; }

# Changing N reruns sampling and what follows, not cleaning.
clean_before=$(stat -c %Y.%N "$root/samples/work/pool.clean.jsonl")
out=$(m N=50)
clean_after=$(stat -c %Y.%N "$root/samples/work/pool.clean.jsonl")
grep -q "stratified-sample" <<<"$out" || { echo "FAIL: N=50 did not rerun sampling"; fail=1; }
grep -q "curate clean" <<<"$out" && { echo "FAIL: N=50 reran cleaning"; fail=1; }
[ "$clean_before" = "$clean_after" ] || { echo "FAIL: pool.clean.jsonl was rewritten"; fail=1; }
[ "$(wc -l < "$calib")" -le 50 ] || { echo "FAIL: N=50 gave $(wc -l < "$calib") records"; fail=1; }
# The calibrate target: the demo model quantized with the set, one row per
# file of samples/eval, and a second run does nothing.
out=$(m calibrate) || { echo "FAIL: make calibrate failed:"; echo "$out"; fail=1; }
rep="$root/samples/calib.report.json"
nd=$(jq '.domains | length' "$rep" 2>/dev/null)
ne=$(ls "$root/samples/eval" | wc -l)
[ "$nd" = "$ne" ] || { echo "FAIL: the report has $nd domains, samples/eval has $ne files"; fail=1; }
[ -s "$root/samples/calib.report.html" ] || { echo "FAIL: no HTML report"; fail=1; }
out=$(m calibrate)
grep -q "curate calibrate" <<<"$out" && { echo "FAIL: a second make calibrate reran it"; fail=1; }
[ $fail = 0 ] && echo "PASS: make builds calib.jsonl ($n records), a second make does nothing, N reruns only sampling, calibrate reports every eval domain"
exit $fail
