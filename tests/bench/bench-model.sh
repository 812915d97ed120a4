#!/usr/bin/env bash
# bench-model.sh - speed of the model runtime (issue #4).  Not a test.
#
# Measures the evaluation speed of curate-calibrate's perplexity run (tokens
# run through the model per second, chunks x ctx, as llama-perplexity counts
# them; tokenization is timed apart) and the peak RSS of the process, for:
#   stories260K  ../shared/models/stories260K, wiki.test.raw, ctx 512, 40 chunks
#   tinymix-f32  ../shared/models/tinymix, data/eval/wiki.jsonl, ctx 256, 100 chunks
#   tiny15m      a random llama of the TinyStories-15M shape (dim 288, hidden 768,
#                6 layers, 6 heads, vocab 32000; made here with curate_testmodel),
#                Llama 2 tokenizer, wiki.test.raw, ctx 512, 10 chunks
# each with 1 and 2 threads, best of --reps runs (the machine is shared; the
# best run is the one least disturbed).  The llama.cpp references of issue #4
# (measured with llama-perplexity on this machine kind, F32) are printed
# beside: stories260K 2 threads about 8,000 tokens/s; tiny15m 1 thread at
# least 2,300 tokens/s.
#
#   tests/bench/bench-model.sh [--build DIR] [--reps N] [--threads "1 2"]
#                              [--only stories260K,tinymix-f32,tiny15m]
#
# Prints a Markdown table on stdout.  Needs ../shared (or $CURATE_SHARED),
# python3 (to read the JSON reports) and a C compiler (for the generator).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build
REPS=3
THREADS="1 2"
ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "bench-model.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
SHARED=${CURATE_SHARED:-$ROOT/../shared}
CAL=$BUILD/bin/curate-calibrate
[ -x "$CAL" ] || { echo "bench-model.sh: $CAL not built" >&2; exit 2; }
[ -d "$SHARED/models" ] || { echo "bench-model.sh: $SHARED has no models" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-model.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

# The random 15M-shaped model, through the library's test-model generator.
make_tiny15m() {
    cat > "$WORK/gen.c" <<'EOF'
#include <stdio.h>
#include "curate/testmodel.h"
int main(int argc, char **argv)
{
    curate_testmodel_config c;
    curate_testmodel_config_init(&c);
    c.dim = 288; c.ffn_dim = 768; c.n_layers = 6; c.n_heads = 6; c.n_kv_heads = 6;
    c.vocab_size = 32000; c.ctx_len = 512; c.seed = 15;
    curate_error e;
    curate_error_clear(&e);
    if (argc != 2 || curate_testmodel_write(&c, argv[1], &e) != CURATE_OK) {
        fprintf(stderr, "gen: %s\n", e.message);
        return 1;
    }
    return 0;
}
EOF
    ${CC:-cc} -O2 -I"$ROOT/libcurate/include" "$WORK/gen.c" -o "$WORK/gen" \
        -L"$BUILD" -lcurate -Wl,-rpath,"$BUILD"
    "$WORK/gen" "$WORK/tiny15m.gguf"
}

# run NAME THREADS ARGS...: best of REPS; prints one table row
row() {
    local name=$1 threads=$2 ref=$3; shift 3
    local best="" line
    for ((i = 0; i < REPS; i++)); do
        "$CAL" -q -j "$threads" --report "$WORK/r.json" "$@" > /dev/null
        line=$(python3 - "$WORK/r.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
d = r["domains"][0]
print("%.0f %.1f %.4f %d %d %d" % (d["eval_tokens_per_second"], r["peak_rss_bytes"] / 2**20,
      d["ppl"], d["ctx"], d["chunks"], d["scored"]))
EOF
)
        if [ -z "$best" ] || [ "${line%% *}" -gt "${best%% *}" ]; then best=$line; fi
    done
    read -r tps rss ppl ctx chunks scored <<<"$best"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$ctx" "$chunks" "$threads" \
        "$tps" "$rss" "$ppl" "$ref"
}

echo "| model | ctx | chunks | threads | tokens/s | peak RSS (MiB) | PPL | llama.cpp reference |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
WIKI=$SHARED/data/wiki/wikitext-2-raw/wiki.test.raw
for t in $THREADS; do
    if want stories260K; then
        ref="-"; [ "$t" = 2 ] && ref="about 8,000 tokens/s"
        row stories260K "$t" "$ref" -m "$SHARED/models/stories260K/stories260K.gguf" \
            -t "$SHARED/models/stories260K/tok512.model" --eval "wiki=$WIKI" -c 512 --max-chunks 40
    fi
done
for t in $THREADS; do
    if want tinymix-f32; then
        row tinymix-f32 "$t" "-" -m "$SHARED/models/tinymix/tinymix-f32.gguf" \
            -t "$SHARED/models/tinymix/tokenizer.model" \
            --eval "wiki=$SHARED/data/eval/wiki.jsonl" -c 256 --max-chunks 100
    fi
done
if want tiny15m; then
    make_tiny15m
    for t in $THREADS; do
        ref="-"; [ "$t" = 1 ] && ref="at least 2,300 tokens/s"
        row "tiny15m (random)" "$t" "$ref" -m "$WORK/tiny15m.gguf" \
            -t "$SHARED/models/llama2-tokenizer/tokenizer.model" --eval "wiki=$WIKI" -c 512 \
            --max-chunks 10
    done
fi
