#!/usr/bin/env bash
# Properties of curate-badcase-inject on generated data:
#   - --total N --strata F: the base records kept per stratum are exactly
#     Hamilton's proportional allocation of N - round(R N) (computed here in
#     awk from the input's stratum sizes), the output's base part is a
#     subsequence of the base input in order, and round(R N) cases are added;
#   - no added text is (after whitespace normalization, computed here with
#     jq) a base text or another added text, and every added record has
#     "badcase": true and is otherwise its pool line;
#   - read = written + rejected for each input and both together;
#   - the same seed gives the same bytes, another seed other cases.
set -u
: "${CURATE_BIN:?}" "${CURATE_TMP:?}"
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }
tool="$CURATE_BIN/curate-badcase-inject"
dir=$(mktemp -d "$CURATE_TMP/badcase-props.XXXXXX")
trap 'rm -rf "$dir"' EXIT
base="$dir/base.jsonl" pool="$dir/pool.jsonl"
awk 'BEGIN {
    srand(11);
    for (i = 1; i <= 900; i++) {
        u = rand(); d = u < .5 ? "web" : u < .8 ? "code" : u < .95 ? "math" : "wiki";
        l = rand() < .8 ? "en" : "de";
        printf "{\"n\":%d,\"text\":\"base text %d here\",\"domain\":\"%s\",\"lang\":\"%s\"}\n", i, i, d, l;
    }
}' > "$base"
# 200 pool records: every 10th repeats a base text with other spacing, every
# 15th repeats an earlier pool text.
awk 'BEGIN {
    srand(12);
    for (i = 1; i <= 200; i++) {
        if (i % 10 == 0) { t = sprintf("  base text %d\\nhere ", i * 3); }
        else if (i % 15 == 0) { t = sprintf("hard  case %d", i - 7); }
        else t = sprintf("hard case %d", i);
        printf "{\"p\":%d,\"text\":\"%s\",\"domain\":\"hard\",\"loss\":%.3f}\n", i, t, rand() * 10;
    }
}' > "$pool"
fail=0
bad() { echo "FAIL: $*"; fail=1; }
norm() { jq -r '.text | gsub("[ \t\n\r]+"; " ") | ltrimstr(" ") | rtrimstr(" ")'; }

for seed in 1 2; do
    for total in 100 257; do
        out="$dir/out.jsonl" st="$dir/stats.json" rej="$dir/rej.jsonl"
        "$tool" -q --badcases "$pool" --total "$total" --strata domain,lang --seed "$seed" \
            --stats "$st" --rejects "$rej" "$base" > "$out" || { bad "exit $?"; continue; }
        label="seed $seed total $total"
        inj=$(awk -v t="$total" 'BEGIN { printf "%d", int(0.3 * t + 0.5) }')
        keep=$((total - inj))
        [ "$(wc -l < "$out")" = "$total" ] || bad "$label: $(wc -l < "$out") records, not $total"
        [ "$(grep -c '"badcase":true' "$out")" = "$inj" ] || bad "$label: not $inj cases added"
        # Hamilton's method on the base strata.
        want=$(jq -r '[.domain, .lang] | join("/")' "$base" | sort | uniq -c |
            awk -v K="$keep" '{ n[NR] = $1; k[NR] = $2; tot += $1 }
              END { for (i = 1; i <= NR; i++) { q[i] = int(K * n[i] / tot); r[i] = (K * n[i]) % tot; s += q[i] }
                    for (e = s; e < K; e++) { b = 0; for (i = 1; i <= NR; i++) if (!u[i] && (b == 0 || r[i] > r[b])) b = i; q[b]++; u[b] = 1 }
                    for (i = 1; i <= NR; i++) if (q[i]) print k[i], q[i] }' | sort)
        got=$(grep -v '"badcase":true' "$out" | jq -r '[.domain, .lang] | join("/")' | sort | uniq -c | awk '{ print $2, $1 }' | sort)
        [ "$want" = "$got" ] || { bad "$label: base strata differ from Hamilton's allocation"; diff <(echo "$want") <(echo "$got"); }
        # Base part: the input's lines, in order.
        grep -v '"badcase":true' "$out" | awk 'NR == FNR { line[FNR] = $0; next }
            { match($0, /"n":[0-9]+/); n = substr($0, RSTART + 4, RLENGTH - 4) + 0;
              if (n <= last || line[n] != $0) { print "bad"; exit 1 } last = n }' "$base" - ||
            bad "$label: base records changed or out of order"
        # Added records: their pool line plus "badcase":true, new texts only.
        grep '"badcase":true' "$out" | sed 's/,"badcase":true}$/}/' | grep -vxFf "$pool" | grep -q . &&
            bad "$label: an added record differs from its pool line"
        added=$(grep '"badcase":true' "$out" | norm | sort)
        dups=$( (norm < "$base" | sort -u; echo "$added") | sort | uniq -d | wc -l)
        [ "$dups" = 0 ] || bad "$label: $dups added texts are already in the set or added twice"
        jq -e '.records.read == .records.written + .records.rejected
               and .inject.base.read == .inject.base.written + .inject.base.rejected
               and .inject.badcases.read == .inject.badcases.written + .inject.badcases.rejected
               and .inject.base.read == 900 and .inject.badcases.read == 200
               and .inject.already_in_set == 20' "$st" >/dev/null || bad "$label: stats do not balance"
        [ "$(wc -l < "$rej")" = "$(jq .records.rejected "$st")" ] || bad "$label: rejects file and stats disagree"
        echo "ok: $label: $(jq -c '.inject | [.injected, .final, .already_in_set, .duplicate_badcase, .thinned]' "$st") (injected, final, already, dup, thinned)"
    done
done
a=$("$tool" -q --badcases "$pool" --count 50 --seed 4 "$base" | md5sum)
b=$("$tool" -q --badcases "$pool" --count 50 --seed 4 < "$base" | md5sum)
c=$("$tool" -q --badcases "$pool" --count 50 --seed 5 "$base" | md5sum)
[ "$a" = "$b" ] || bad "file and stdin give different outputs"
[ "$a" != "$c" ] || bad "seeds 4 and 5 give the same cases"
# Ratio without --total: 900 base records and 25% -> round(900/3) = 300 wanted.
n=$("$tool" -q --badcases "$pool" --ratio 0.25 --seed 4 "$base" | grep -c '"badcase":true')
[ "$n" = "$(( 200 - 20 - $(awk 'BEGIN{for(i=1;i<=200;i++) if (i%10 && !(i%15)) c++; print c}') ))" ] ||
    bad "ratio 0.25: $n added; every new pool record was expected (fewer than wanted)"
[ $fail = 0 ] && echo "PASS: badcase-inject properties"
exit $fail
