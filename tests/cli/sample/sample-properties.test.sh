#!/usr/bin/env bash
# Properties of curate-stratified-sample on a generated, skewed input, over
# several seeds, allocations and both budget units:
#   - the output is a subsequence of the input, byte for byte, in input order;
#   - per stratum, the records written are exactly the quota in --stats, the
#     quotas add up to the budget, no stratum gets more than it has;
#   - in token mode each stratum's tokens stay within its quota;
#   - read = written + rejected; output + rejects hold every input record;
#   - the same seed gives the same bytes (from a file, from stdin, with or
#     without a rejects file); another seed gives another sample.
set -u
: "${CURATE_BIN:?}" "${CURATE_TMP:?}"
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }
tool="$CURATE_BIN/curate-stratified-sample"
dir=$(mktemp -d "$CURATE_TMP/sample-props.XXXXXX")
trap 'rm -rf "$dir"' EXIT
in="$dir/in.jsonl"
# 1500 records: domains 60/25/10/5 %, languages 70/20/10 % (a few without
# lang), tokens 1..600; "n" is the line number, for the order check.
awk 'BEGIN {
    srand(7);
    for (i = 1; i <= 1500; i++) {
        u = rand(); d = u < .60 ? "web" : u < .85 ? "code" : u < .95 ? "math" : "wiki";
        v = rand(); l = v < .70 ? "en" : v < .90 ? "de" : "zh";
        t = 1 + int(rand() * 600);
        b = t < 128 ? "short" : t < 400 ? "medium" : "long";
        lang = (i % 97 == 0) ? "" : ",\"lang\":\"" l "\"";
        printf "{\"n\":%d,\"text\":\"record %d\",\"domain\":\"%s\"%s,\"bucket\":\"%s\",\"tokens\":%d}\n", i, i, d, lang, b, t;
    }
}' > "$in"
fail=0
bad() { echo "FAIL: $*"; fail=1; }

check_run() { # label, then options
    local label=$1; shift
    local out="$dir/out.jsonl" st="$dir/stats.json" rej="$dir/rej.jsonl"
    "$tool" -q "$@" --stats "$st" --rejects "$rej" "$in" > "$out" || { bad "$label: exit $?"; return; }
    # Subsequence in input order, byte for byte.
    awk 'NR == FNR { line[FNR] = $0; next }
         { match($0, /"n":[0-9]+/); n = substr($0, RSTART + 4, RLENGTH - 4) + 0;
           if (n <= last || line[n] != $0) { print "bad line " FNR; exit 1 } last = n }' \
        "$in" "$out" || bad "$label: output is not the input's records in input order"
    local unit budget
    unit=$(jq -r .sample.unit "$st"); budget=$(jq -r .sample.budget "$st")
    # Per stratum: written records and units match the stats; quotas bounded.
    local fields
    fields=$(jq -r '.sample.by | join(",")' "$st")
    local want got
    want=$(jq -r --arg u "$unit" '.sample.strata[] | [(.key | to_entries | map(.value) | join("/")), (if $u == "records" then .quota else .selected end), .selected_records] | @tsv' "$st" | sort)
    got=$(jq -r --arg f "$fields" '. as $r | [($f | split(","))[] as $k | ($r[$k] // "-" | tostring)] | join("/") as $key | [$key, $r.tokens] | @tsv' "$out" |
          awk -F'\t' -v u="$unit" '{ n[$1]++; t[$1] += $2 } END { for (k in n) printf "%s\t%d\t%d\n", k, (u == "records" ? n[k] : t[k]), n[k] }' | sort)
    want=$(awk -F'\t' '$3 > 0' <<<"$want")
    [ "$want" = "$got" ] || { bad "$label: per-stratum counts differ from --stats"; diff <(echo "$want") <(echo "$got") | head; }
    jq -e '[.sample.strata[] | select(.quota > .available)] | length == 0' "$st" >/dev/null ||
        bad "$label: a quota exceeds what its stratum has"
    if [ "$unit" = records ]; then
        jq -e '([.sample.strata[].quota] | add) == ([.sample.budget, .sample.available] | min)' "$st" >/dev/null ||
            bad "$label: quotas do not add up to the budget"
    else
        jq -e '[.sample.strata[] | select(.selected > .quota)] | length == 0' "$st" >/dev/null ||
            bad "$label: a stratum's tokens exceed its quota"
        jq -e '.sample.selected <= .sample.budget' "$st" >/dev/null || bad "$label: over the token budget"
    fi
    # Conservation.
    local read written rejected
    read=$(jq .records.read "$st"); written=$(jq .records.written "$st"); rejected=$(jq .records.rejected "$st")
    [ "$read" = 1500 ] && [ $((written + rejected)) = "$read" ] && [ "$(wc -l < "$out")" = "$written" ] &&
        [ "$(wc -l < "$rej")" = "$rejected" ] || bad "$label: read $read != written $written + rejected $rejected"
    local all
    all=$(cat "$out" <(jq -c 'del(._reject, ._file, ._line)' "$rej") | jq -r .n | sort -n | uniq | wc -l)
    [ "$all" = 1500 ] || bad "$label: output + rejects hold $all distinct records, not 1500"
    echo "ok: $label: $(jq -c '[.sample.strata_count, .sample.selected, .sample.shortfall]' "$st") (strata, selected, shortfall)"
}

for seed in 1 2; do
    check_run "equal n=100 seed $seed" --by domain,lang --n 100 --seed "$seed"
    check_run "proportional n=100 seed $seed" --by domain --n 100 --alloc proportional --seed "$seed"
    check_run "shares+min n=60 seed $seed" --by domain,bucket --n 60 --min-per-stratum 3 \
        --alloc 'bucket=short:0.25,medium:0.5,long:0.25' --seed "$seed"
    check_run "tokens 20K seed $seed" --by domain --tokens 20000 --seed "$seed"
    check_run "tokens shares seed $seed" --by bucket,lang --tokens 8K \
        --alloc 'bucket=short:1,medium:2,long:1' --min-per-stratum 200 --seed "$seed"
done

# Reproducibility.
a=$("$tool" -q --by domain,lang --n 64 --seed 11 "$in" | md5sum)
b=$("$tool" -q --by domain,lang --n 64 --seed 11 < "$in" | md5sum)
c=$("$tool" -q --by domain,lang --n 64 --seed 11 --rejects "$dir/r2.jsonl" -o "$dir/o2.jsonl" "$in"; md5sum < "$dir/o2.jsonl")
d=$("$tool" -q --by domain,lang --n 64 --seed 12 "$in" | md5sum)
[ "$a" = "$b" ] || bad "stdin and file inputs give different samples"
[ "$a" = "$c" ] || bad "a rejects file or -o changes the sample"
[ "$a" != "$d" ] || bad "seeds 11 and 12 give the same sample"
# Splitting the input over two files changes nothing either.
head -700 "$in" > "$dir/part1.jsonl"; tail -n +701 "$in" > "$dir/part2.jsonl"
e=$("$tool" -q --by domain,lang --n 64 --seed 11 "$dir/part1.jsonl" "$dir/part2.jsonl" | md5sum)
[ "$a" = "$e" ] || bad "one file and the same records in two files give different samples"
[ $fail = 0 ] && echo "PASS: stratified-sample properties"
exit $fail
