#!/usr/bin/env bash
# Property: for every filter, records read = written + rejected, nothing is
# lost without a trace.  Run on the dirty samples plus a file of every kind
# of bad line (invalid JSON, invalid UTF-8, non-object lines, missing and
# empty text, CRLF, BOM, over-long records, exact, normalized and near
# duplicates), with --on-error=skip, and check the stats, the output and the
# rejects file against each other and against the input's line count.
set -u
: "${CURATE_BIN:?}" "${CURATE_SRC:?}" "${CURATE_TMP:?}"
dir=$(mktemp -d "$CURATE_TMP/conservation.XXXXXX")
trap 'rm -rf "$dir"' EXIT
bad="$dir/bad.jsonl"
{
    printf '\xef\xbb\xbf{"id":"a","text":"The first record, with a BOM before it.","domain":"web"}\r\n'
    printf '{"id":"b","text":"The first record, with a BOM before it.","domain":"web"}\n'
    printf '{"id":"c","text":"  The   first record,  with a BOM before it. ","domain":"web"}\n'
    printf '{"id":"d","text":"broken \xff\xfe bytes in the middle of an otherwise fine sentence here","domain":"web"}\n'
    printf '{"id":"e","text":"cut off\n'
    printf '[1,2,3]\n'
    printf '"just a string"\n'
    printf '{"id":"f","domain":"web"}\n'
    printf '{"id":"g","text":"","domain":"web"}\n'
    printf '{"id":"h","text":42,"domain":"web"}\n'
    printf '{"id":"i","text":"lone \\ud800 surrogate in a record of reasonable length","domain":"web"}\n'
    printf '\n   \n'
    printf '{"id":"j","text":"%s","domain":"web"}\n' "$(head -c 3000 /dev/zero | tr '\0' 'x')"
    printf '{"id":"k","text":"A quiet river ran past the old mill where the children played every summer afternoon.","domain":"stories"}\n'
    printf '{"id":"l","text":"A quiet river ran past the old mill where the children played each summer afternoon.","domain":"stories"}\n'
} > "$bad"
inputs=("$bad" "$CURATE_SRC"/samples/raw/*.jsonl)
# Non-blank lines in the inputs = records every tool must account for.
expected=$(cat "${inputs[@]}" | grep -cvE '^[[:space:]]*$')

fail=0
check() { # name, then the command (tool and options)
    local name=$1; shift
    local exe=$1; shift
    [ -x "$CURATE_BIN/$exe" ] || { echo "skip: $exe not built"; return; }
    "$CURATE_BIN/$exe" "$@" --on-error=skip --max-record-bytes 2000 -q \
        --stats "$dir/$name.stats.json" --rejects "$dir/$name.rejects.jsonl" \
        -o "$dir/$name.out.jsonl" "${inputs[@]}"
    local st=$?
    if [ $st != 0 ]; then echo "FAIL: $name exits $st"; fail=1; return; fi
    local read written rejected out rej
    read=$(jq '.records.read' "$dir/$name.stats.json")
    written=$(jq '.records.written' "$dir/$name.stats.json")
    rejected=$(jq '.records.rejected' "$dir/$name.stats.json")
    out=$(wc -l < "$dir/$name.out.jsonl")
    rej=$(wc -l < "$dir/$name.rejects.jsonl")
    sumr=$(jq '[.rejected_by_reason[]] | add // 0' "$dir/$name.stats.json")
    local ok=1
    [ "$read" = "$expected" ] || { echo "FAIL: $name read $read records, input has $expected"; ok=0; }
    [ $((written + rejected)) = "$read" ] || { echo "FAIL: $name: $written written + $rejected rejected != $read read"; ok=0; }
    [ "$out" = "$written" ] || { echo "FAIL: $name: $out output lines, stats say $written"; ok=0; }
    [ "$rej" = "$rejected" ] || { echo "FAIL: $name: $rej reject lines, stats say $rejected"; ok=0; }
    [ "$sumr" = "$rejected" ] || { echo "FAIL: $name: reasons add up to $sumr, not $rejected"; ok=0; }
    # Every reject line is a JSON object with a _reject reason.  (Python's
    # parser, not jq: a record with a lone \ud800 escape is valid RFC 8259
    # and passes through unchanged, but jq refuses it.)
    if [ "$rej" -gt 0 ] && ! python3 -c '
import json, sys
for n, line in enumerate(open(sys.argv[1], "rb"), 1):
    rec = json.loads(line.decode("utf-8", "surrogateescape"))
    if not isinstance(rec, dict) or "_reject" not in rec:
        sys.exit("line %d has no _reject" % n)
' "$dir/$name.rejects.jsonl"; then
        echo "FAIL: $name: rejects file is not all JSON objects with _reject"; ok=0
    fi
    [ $ok = 1 ] && echo "ok: $name: read $read = written $written + rejected $rejected" || fail=1
}
check clean curate-clean
check dedupe-exact curate-dedupe --mode exact
check dedupe-near curate-dedupe --mode near
check lang curate-lang-filter
check bucket curate-length-bucket --unit words --min 3
check sample curate-stratified-sample --by domain --n 50 --seed 3
[ $fail = 0 ] && echo "PASS: read = written + rejected for every filter"
exit $fail
