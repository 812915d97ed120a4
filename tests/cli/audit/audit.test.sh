#!/usr/bin/env bash
# curate-audit's numbers against independent computations:
#  - field counts add up to the records; length statistics and the
#    histogram equal jq/awk computations over the "tokens" fields
#    (nearest-rank percentiles, power-of-two bins from 16);
#  - token lengths counted with --tokenizer equal spm_encode's id counts
#    (Llama 2 tokenizer from ../shared, else one trained with spm_train);
#  - exact and near duplicate counts equal what curate-dedupe --mode near
#    rejects with the same normalization (when curate-dedupe is built);
#  - the report is the same whether the set comes from a file or a pipe.
set -u
: "${CURATE_BIN:?}" "${CURATE_SRC:?}" "${CURATE_TMP:?}"
dir=$(mktemp -d "$CURATE_TMP/audit.XXXXXX")
trap 'rm -rf "$dir"' EXIT
A="$CURATE_BIN/curate-audit"
here="$CURATE_SRC/tests/cli/audit"
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# A set with varied lengths: the fixture, with every 7th record duplicated
# and every 11th made a near copy, and token counts spread over many bins.
set="$dir/set.jsonl"
jq -c '(.id | ltrimstr("r") | tonumber) as $n | .tokens = (($n * 7919) % 5000)' "$here/data/balanced.jsonl" > "$set"
jq -c 'select((.id | ltrimstr("r") | tonumber) % 7 == 0) | .id += "-dup"' "$here/data/balanced.jsonl" >> "$set"
jq -c 'select((.id | ltrimstr("r") | tonumber) % 11 == 0) | .id += "-near" | .text += " extra words"' "$here/data/balanced.jsonl" >> "$set"
n=$(wc -l < "$set")

"$A" --json "$set" > "$dir/r.json" || bad "curate-audit exits $?"
[ "$(jq .records "$dir/r.json")" = "$n" ] || bad "records: $(jq .records "$dir/r.json") != $n"
for f in domain lang bucket; do
    s=$(jq "([.${f}.values[].count] | add) + .${f}.missing + .${f}.overflow" "$dir/r.json")
    [ "$s" = "$n" ] || bad "$f counts add up to $s, not $n"
done
want=$(jq -s '[.[].tokens] | sort as $v | length as $n |
    def rank(q): (q * $n | ceil) as $r | $v[(if $r < 1 then 1 else $r end) - 1];
    {total: add, min: $v[0], max: $v[-1], p25: rank(0.25), median: rank(0.5), p75: rank(0.75)}' "$set" | jq -cS .)
got=$(jq -cS '.lengths | {total, min, max, p25, median, p75}' "$dir/r.json")
[ "$want" = "$got" ] || bad "length statistics $got, reference $want"
want=$(jq -r .tokens "$set" | awk '{ b = 0; if ($1 >= 16) { v = $1; k = 0; while (v >= 2) { v = int(v / 2); k++ } b = k - 3 } c[b]++; if (b > m) m = b }
    END { printf "["; for (i = 0; i <= m; i++) printf "%s%d", (i ? "," : ""), c[i] + 0; printf "]" }')
got=$(jq -c '[.lengths.histogram[].count]' "$dir/r.json")
[ "$want" = "$got" ] || bad "histogram $got, reference $want"

# Duplicates: the same verdicts as curate-dedupe.
if [ -x "$CURATE_BIN/curate-dedupe" ]; then
    for lvl in whitespace casefold; do
        "$CURATE_BIN/curate-dedupe" -q --mode near --normalize $lvl --stats "$dir/d.json" "$set" > /dev/null
        want=$(jq -c '[.rejected_by_reason.duplicate // 0, .rejected_by_reason.near_duplicate // 0]' "$dir/d.json")
        got=$("$A" --json --normalize $lvl "$set" | jq -c '[.duplicates.exact, .duplicates.near]')
        [ "$want" = "$got" ] || bad "--normalize $lvl: duplicates $got, curate-dedupe $want"
    done
fi
dups=$(jq -c '[.duplicates.exact, .duplicates.exact_groups]' "$dir/r.json")
[ "$dups" = "[37,37]" ] || bad "exact duplicates $dups, expected [37,37] (every 7th of 256)"

# File and pipe give the same report.
"$A" --json < "$set" > "$dir/r2.json"
cmp -s "$dir/r.json" "$dir/r2.json" || bad "report from standard input differs"

# Token lengths with a tokenizer, against spm_encode.
model="${CURATE_SHARED:-/nonexistent}/models/llama2-tokenizer/tokenizer.model"
texts="$dir/texts.jsonl"
jq -c 'del(.tokens)' "$here/data/eval.jsonl" "$here/data/balanced.jsonl" > "$texts"
if [ ! -f "$model" ] && command -v spm_train >/dev/null; then
    jq -r .text "$texts" > "$dir/corpus.txt"
    spm_train --input="$dir/corpus.txt" --model_prefix="$dir/tok" --vocab_size=400 --model_type=bpe \
        --byte_fallback=true --character_coverage=1.0 --normalization_rule_name=identity \
        --remove_extra_whitespaces=false --hard_vocab_limit=false --minloglevel=2 > /dev/null 2>&1 \
        && model="$dir/tok.model"
fi
if [ -f "$model" ]; then
    want=$(jq -r .text "$texts" | spm_encode --model="$model" --output_format=id | awk '{ s += NF } END { print s }')
    got=$("$A" --json --tokenizer "$model" "$texts" | jq .lengths.total)
    [ "$want" = "$got" ] || bad "token total $got, spm_encode says $want"
else
    echo "note: no tokenizer available, token counting not checked"
fi
[ $fail = 0 ] && echo "PASS: curate-audit agrees with jq, awk, spm_encode and curate-dedupe on $n records"
exit $fail
