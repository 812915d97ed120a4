#!/usr/bin/env bash
# The shared contract of every curate tool (../shared/DESIGN.md):
#  --help on stdout with exit 0; --version names the tool and libcurate;
#  an unknown option is a usage error (exit 2, "Try '<tool> --help'");
#  a man page docs/<tool>.1 exists, and the options it documents are exactly
#  the options --help lists (so the two cannot drift apart).
set -u
: "${CURATE_BIN:?}" "${CURATE_SRC:?}"
fail=0
n=0
for exe in "$CURATE_BIN"/curate-*; do
    [ -x "$exe" ] || continue
    tool=$(basename "$exe")
    n=$((n + 1))
    out=$("$exe" --help 2>/dev/null); st=$?
    [ $st = 0 ] || { echo "FAIL: $tool --help exits $st"; fail=1; }
    grep -q "^Usage: $tool " <<<"$out" || { echo "FAIL: $tool --help has no 'Usage: $tool' line"; fail=1; }
    ver=$("$exe" --version 2>/dev/null); st=$?
    [ $st = 0 ] && grep -q "^$tool (curate) " <<<"$ver" && grep -q "libcurate" <<<"$ver" \
        || { echo "FAIL: $tool --version: '$ver'"; fail=1; }
    err=$("$exe" --no-such-option 2>&1 >/dev/null); st=$?
    [ $st = 2 ] || { echo "FAIL: $tool --no-such-option exits $st, expected 2"; fail=1; }
    grep -q "Try '$tool --help'" <<<"$err" || { echo "FAIL: $tool usage error lacks the --help hint"; fail=1; }

    man="$CURATE_SRC/docs/$tool.1"
    if [ ! -f "$man" ]; then
        echo "FAIL: $tool has no man page docs/$tool.1"; fail=1; continue
    fi
    # Long options in --help (lines starting with option flags).
    help_opts=$(grep -oE '^ +(-[A-Za-z0-9], )?--[a-z0-9-]+' <<<"$out" | grep -oE -- '--[a-z0-9-]+' | sort -u)
    # Long options the man page documents: roff escapes "\-\-name" or "\fB\-\-name".
    man_opts=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$man" | grep -oE -- '--[a-z0-9][a-z0-9-]*' | sort -u)
    missing=$(comm -23 <(echo "$help_opts") <(echo "$man_opts"))
    extra=$(comm -13 <(echo "$help_opts") <(echo "$man_opts"))
    if [ -n "$missing" ]; then
        echo "FAIL: $tool: options in --help but not in docs/$tool.1:" $missing; fail=1
    fi
    if [ -n "$extra" ]; then
        echo "FAIL: $tool: options in docs/$tool.1 but not in --help:" $extra; fail=1
    fi
    if command -v man >/dev/null 2>&1; then
        MANWIDTH=80 man -l "$man" >/dev/null 2>"$CURATE_TMP/man.$tool.err" || { echo "FAIL: man -l $man fails"; fail=1; }
    fi
done
# The dispatcher.
"$CURATE_BIN/curate" --help | grep -q "dedupe" || { echo "FAIL: curate --help does not list the tools"; fail=1; }
"$CURATE_BIN/curate" nosuchtool >/dev/null 2>&1; [ $? = 2 ] || { echo "FAIL: curate nosuchtool should exit 2"; fail=1; }
[ $n -gt 0 ] || { echo "FAIL: no tools found in $CURATE_BIN"; fail=1; }
[ $fail = 0 ] && echo "PASS: $n tools keep the --help/--version/usage/man contract"
exit $fail
