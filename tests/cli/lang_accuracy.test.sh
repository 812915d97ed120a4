#!/usr/bin/env bash
# curate-lang-filter end to end on labelled text: every record's "lang" is
# compared with the language the text is known to be written in ("truth"),
# and "script" with its known script.  Two sets:
#   - the committed fixture (69 UDHR paragraphs, 23 languages, 100+
#     characters each): always runs;
#   - with $CURATE_SHARED: every paragraph of 100+ characters of the 23 UDHR
#     translations in $CURATE_SHARED/data/multilingual/udhr2, cut as in
#     tests/unit/test_langid_accuracy.c (trimmed non-blank lines joined with
#     "\n" until the unit has 100+ code points); skipped with a message when
#     it is absent.
# Passes when language accuracy is at least 95% and scripts are all right;
# prints the per-language table.
# ctest-label: full
set -u
: "${CURATE_BIN:?}" "${CURATE_SRC:?}" "${CURATE_TMP:?}"
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }
dir=$(mktemp -d "$CURATE_TMP/lang_accuracy.XXXXXX")
trap 'rm -rf "$dir"' EXIT
tool="$CURATE_BIN/curate-lang-filter"
fail=0

# Per-language table and overall accuracy of an annotated JSONL file.
judge() {
    local name=$1 file=$2
    jq -rs '
      group_by(.truth) | map({truth: .[0].truth, n: length,
        ok: (map(select(.lang == .truth)) | length),
        script_ok: (map(select(.script == .truth_script)) | length),
        wrong: (map(select(.lang != .truth) | .lang) | group_by(.) | map("\(.[0]) \(length)") | join(", "))})
      | (.[] | "  \(.truth)\t\(.n)\t\(.ok)\t\(.script_ok)\t\(.wrong)"),
        "TOTAL \(map(.n) | add) \(map(.ok) | add) \(map(.script_ok) | add)"' "$file" > "$dir/table" || return 1
    echo "$name: lang, paragraphs, lang correct, script correct, wrong answers"
    grep -v '^TOTAL' "$dir/table"
    read -r _ n ok sok < <(grep '^TOTAL' "$dir/table")
    echo "$name: $ok of $n languages right ($(( ok * 1000 / n )) per mille), scripts $sok of $n"
    [ "$n" -gt 0 ] && [ $(( ok * 100 )) -ge $(( n * 95 )) ] || { echo "FAIL: $name: accuracy under 95%"; fail=1; }
    [ "$sok" = "$n" ] || { echo "FAIL: $name: some scripts are wrong"; fail=1; }
}

fixture="$CURATE_SRC/tests/cli/lang/data/udhr69.jsonl"
"$tool" -q "$fixture" > "$dir/fixture.out" || { echo "FAIL: tool failed on the fixture"; exit 1; }
[ "$(wc -l < "$dir/fixture.out")" = 69 ] || { echo "FAIL: fixture: not 69 records out"; fail=1; }
judge fixture "$dir/fixture.out"

udhr="${CURATE_SHARED:-}/data/multilingual/udhr2"
if [ -z "${CURATE_SHARED:-}" ] || [ ! -d "$udhr" ]; then
    echo "SKIP (shared part): \$CURATE_SHARED/data/multilingual/udhr2 is absent"
    [ $fail = 0 ] && exit 0 || exit 1
fi
# file -> ISO 639-1, ISO 15924
labels="arb ar Arab|ben bn Beng|cmn_hans zh Hani|cmn_hant zh Hani|deu de Latn|eng en Latn
fra fr Latn|heb he Hebr|hin hi Deva|ind id Latn|ita it Latn|jpn ja Jpan|kor ko Hang
nld nl Latn|pol pl Latn|por_BR pt Latn|rus ru Cyrl|spa es Latn|swh sw Latn|tha th Thai
tur tr Latn|ukr uk Cyrl|vie vi Latn"
tr '|' '\n' <<<"$labels" | while read -r f lang script; do
    [ -f "$udhr/$f.txt" ] || { echo "FAIL: $udhr/$f.txt is missing" >&2; continue; }
    # jq counts code points with length; -R reads raw lines.
    jq -Rn --arg t "$lang" --arg s "$script" '
      reduce (inputs | sub("^[ \t\r]+"; "") | sub("[ \t\r]+$"; "") | select(length > 0)) as $l
        ({unit: null, out: []};
         .unit = (if .unit == null then $l else .unit + "\n" + $l end)
         | if (.unit | length) >= 100 then .out += [.unit] | .unit = null else . end)
      | .out[] | {truth: $t, truth_script: $s, text: .}' -c "$udhr/$f.txt"
done > "$dir/udhr.jsonl"
n=$(wc -l < "$dir/udhr.jsonl")
[ "$n" -gt 900 ] || { echo "FAIL: only $n paragraphs cut from $udhr"; exit 1; }
"$tool" -q "$dir/udhr.jsonl" > "$dir/udhr.out" || { echo "FAIL: tool failed on the UDHR set"; exit 1; }
judge udhr "$dir/udhr.out"
[ $fail = 0 ] && echo "PASS" || exit 1
