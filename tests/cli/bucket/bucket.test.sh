#!/usr/bin/env bash
# curate-length-bucket against independent references:
#  - token counts equal the number of ids spm_encode (SentencePiece's own
#    command line tool) prints for each text, with the Llama 2 tokenizer
#    from ../shared, or a tokenizer trained here with spm_train when
#    ../shared is absent; with and without the count cache;
#  - word and character counts equal jq's (split on whitespace, length);
#  - --quantiles edges equal a reference computed with sort/awk from the
#    same counts, and reading standard input gives the same bytes as
#    reading the file (stdin is spooled).
set -u
: "${CURATE_BIN:?}" "${CURATE_SRC:?}" "${CURATE_TMP:?}"
dir=$(mktemp -d "$CURATE_TMP/bucket.XXXXXX")
trap 'rm -rf "$dir"' EXIT
B="$CURATE_BIN/curate-length-bucket"
here="$CURATE_SRC/tests/cli/bucket"
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# Texts without newlines (spm_encode reads one text per line): the fixture
# plus real lines from the samples when present.
in="$dir/in.jsonl"
jq -c 'select(.text | test("\n") | not)' "$here/data/small.jsonl" > "$in"
for f in "$CURATE_SRC"/samples/raw/*.jsonl; do
    [ -f "$f" ] && jq -c 'select((.text? // null) | type == "string" and (test("\n") | not))' "$f" 2>/dev/null | head -200 >> "$in"
done
n=$(wc -l < "$in")

model="${CURATE_SHARED:-/nonexistent}/models/llama2-tokenizer/tokenizer.model"
if [ ! -f "$model" ]; then
    if ! command -v spm_train >/dev/null; then echo "SKIP: no ../shared and no spm_train"; exit 77; fi
    jq -r .text "$in" > "$dir/corpus.txt"
    for i in 1 2 3 4 5; do cat "$dir/corpus.txt"; done > "$dir/corpus5.txt"
    spm_train --input="$dir/corpus5.txt" --model_prefix="$dir/tok" --vocab_size=1500 --hard_vocab_limit=false --model_type=bpe \
        --byte_fallback=true --character_coverage=0.9995 --normalization_rule_name=identity \
        --remove_extra_whitespaces=false --minloglevel=2 > "$dir/spm.log" 2>&1 || { echo "FAIL: spm_train"; tail -5 "$dir/spm.log"; exit 1; }
    model="$dir/tok.model"
fi

jq -r .text "$in" | spm_encode --model="$model" --output_format=id | awk '{print NF}' > "$dir/want.tok"
for cache in "" "--no-cache"; do
    "$B" -q --tokenizer "$model" $cache "$in" | jq .tokens > "$dir/got.tok"
    cmp -s "$dir/want.tok" "$dir/got.tok" || { bad "token counts differ from spm_encode ($cache)"; diff "$dir/want.tok" "$dir/got.tok" | head; }
done

# Words and characters against jq (whitespace: the Unicode White_Space set
# in curate, \s plus NBSP here; the fixture has NBSP but no rarer spaces).
"$B" -q --unit words "$in" | jq .tokens > "$dir/got.w"
jq '[.text | splits("[\\s\u00a0]+") | select(length > 0)] | length' "$in" > "$dir/want.w"
cmp -s "$dir/want.w" "$dir/got.w" || { bad "word counts differ from jq"; diff "$dir/want.w" "$dir/got.w" | head; }
"$B" -q --unit chars "$in" | jq .tokens > "$dir/got.c"
jq '.text | length' "$in" > "$dir/want.c"
cmp -s "$dir/want.c" "$dir/got.c" || { bad "character counts differ from jq"; diff "$dir/want.c" "$dir/got.c" | head; }

# Quantiles: edge k = 1 + the count at rank ceil(q n) among the sorted counts.
for qs in "0.25,0.75" "0.1,0.5,0.9" "0.5"; do
    names=$(awk -v q="$qs" 'BEGIN { n = split(q, a, ","); for (i = 0; i <= n; i++) printf "%sb%d", i ? "," : "", i }')
    "$B" -q --unit words --quantiles "$qs" --names "$names" --stats "$dir/q.json" "$in" > "$dir/q.file"
    "$B" -q --unit words --quantiles "$qs" --names "$names" < "$in" > "$dir/q.stdin"
    cmp -s "$dir/q.file" "$dir/q.stdin" || bad "--quantiles $qs: standard input and file differ"
    got=$(jq -c '.length_bucket.edges' "$dir/q.json")
    want=$(sort -n "$dir/want.w" | awk -v q="$qs" '{ v[NR] = $1 } END {
        k = split(q, a, ","); printf "[";
        for (i = 1; i <= k; i++) { r = a[i] * NR; c = int(r); if (c < r) c++; if (c < 1) c = 1;
            printf "%s%d", (i > 1 ? "," : ""), v[c] + 1 } printf "]" }')
    [ "$got" = "$want" ] || bad "--quantiles $qs: edges $got, reference $want"
    # every record's bucket agrees with the edges
    jq -r --argjson e "$got" '[.tokens, .bucket] | @tsv' "$dir/q.file" | awk -v e="$got" '
        BEGIN { gsub(/[\[\]]/, "", e); k = split(e, E, ",") }
        { b = 0; while (b < k && $1 >= E[b + 1]) b++; if ($2 != "b" b) { print "bad bucket: " $0; bad = 1 } }
        END { exit bad }' || bad "--quantiles $qs: a record is in the wrong bucket"
done
[ $fail = 0 ] && echo "PASS: length-bucket agrees with spm_encode, jq and the quantile rule on $n records"
exit $fail
