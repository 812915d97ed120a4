#!/usr/bin/env bash
# bench-calibrate.sh - cost of the calibrate stage (issue #5).  Not a test.
#
# Runs curate-calibrate on ../shared/models/tinymix (F32) with the demo
# calibration set (tests/cli/calibrate/data/calib.jsonl, the demo set frozen, packed as llama.cpp's imatrix does,
# ctx 256) and the six hold-out domains of ../shared/data/eval (at most
# --max-chunks chunks each), once per configuration:
#   eval only (the original model, for the baseline speed and memory),
#   rtn, mse, imatrix, awq, gptq and gptq --act-order at each of --bits,
#   W8A8: rtn 8-bit weights with 8-bit activations, per static method and
#   per token.
# For each it reports the wall time of the process (GNU time when present,
# else the shell's clock), the time of each stage from the JSON report
# (calibration pass, quantization, evaluation), the peak RSS, the evaluation
# speed (chunk tokens, chunks x ctx, per second of evaluation; with a
# quantized model every token runs through both models), and the mean
# change in PPL and mean KL over the six domains.  Best of --reps runs by
# wall time (the machine is shared; the best run is the least disturbed).
#
#   tests/bench/bench-calibrate.sh [--build DIR] [--reps N] [--threads N]
#                                  [--max-chunks N] [--bits "4 3"]
#                                  [--calib FILE] [--only rtn,gptq,w8a8,...]
#
# Prints a Markdown table on stdout.  Needs ../shared (or $CURATE_SHARED) and
# python3 (to read the JSON reports).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build
REPS=1
THREADS=2
MAXCH=20
BITS="4 3"
CALIB=$ROOT/tests/cli/calibrate/data/calib.jsonl   # a frozen copy of the demo set
ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --max-chunks) MAXCH=$2; shift 2 ;;
        --bits) BITS=$2; shift 2 ;;
        --calib) CALIB=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "bench-calibrate.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
SHARED=${CURATE_SHARED:-$ROOT/../shared}
CAL=$BUILD/bin/curate-calibrate
[ -x "$CAL" ] || { echo "bench-calibrate.sh: $CAL not built" >&2; exit 2; }
[ -d "$SHARED/models/tinymix" ] || { echo "bench-calibrate.sh: $SHARED has no tinymix" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-calibrate.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
GNUTIME=""
[ -x /usr/bin/time ] && /usr/bin/time -f %e true 2>/dev/null && GNUTIME=/usr/bin/time

want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

BASE=(-q -j "$THREADS" -m "$SHARED/models/tinymix/tinymix-f32.gguf"
      -t "$SHARED/models/tinymix/tokenizer.model" -c 256 --max-chunks "$MAXCH"
      --eval-dir "$SHARED/data/eval")

# row NAME ARGS...: best of REPS by wall time; prints one table row
row() {
    local name=$1; shift
    local best="" line wall
    for ((i = 0; i < REPS; i++)); do
        if [ -n "$GNUTIME" ]; then
            $GNUTIME -f %e -o "$WORK/time" "$CAL" "${BASE[@]}" --report "$WORK/r.json" "$@" \
                > /dev/null
            wall=$(cat "$WORK/time")
        else
            local t0 t1
            t0=$(date +%s.%N)
            "$CAL" "${BASE[@]}" --report "$WORK/r.json" "$@" > /dev/null
            t1=$(date +%s.%N)
            wall=$(python3 -c "print('%.2f' % ($t1 - $t0))")
        fi
        line=$(python3 - "$WORK/r.json" "$wall" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["seconds"]
tok = sum(d["chunks"] * d["ctx"] for d in r["domains"] if "chunks" in d)
tps = tok / s["eval"] if s["eval"] > 0 else 0
summ = r.get("summary") or {}
dp, kl = summ.get("mean_dppl_pct"), summ.get("mean_kl")
print("%s %.2f %.2f %.2f %.0f %.1f %s %s" % (sys.argv[2], s["calibrate"], s["quantize"], s["eval"],
      tps, r["peak_rss_bytes"] / 2**20, "-" if dp is None else "%+.2f%%" % dp,
      "-" if kl is None else "%.5f" % kl))
EOF
)
        if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if float('${line%% *}') < float('${best%% *}') else 1)"; then
            best=$line
        fi
    done
    read -r wall cal quant ev tps rss dp kl <<<"$best"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$wall" "$cal" "$quant" "$ev" \
        "$tps" "$rss" "$dp" "$kl"
}

echo "| configuration | wall s | calibrate s | quantize s | eval s | eval tokens/s | peak RSS MiB | mean dPPL | mean KL |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
want eval && row "evaluation only (original)"
for b in $BITS; do
    for m in rtn mse imatrix awq gptq; do
        want "$m" || continue
        if [ "$m" = rtn ] || [ "$m" = mse ]; then
            row "$m $b-bit g32" --method "$m" --bits "$b"
        else
            row "$m $b-bit g32" --calib "$CALIB" --method "$m" --bits "$b"
        fi
    done
    want gptq && row "gptq $b-bit g32 act-order" --calib "$CALIB" --method gptq --bits "$b" --act-order
done
if want w8a8; then
    for a in minmax percentile:99.99 kl mse; do
        row "W8A8 rtn, act $a" --calib "$CALIB" --method rtn --bits 8 --act-bits 8 --act-method "$a"
    done
    row "W8A8 rtn, act per token" --method rtn --bits 8 --act-bits 8 --act-scope token
fi
