#!/usr/bin/env bash
# Run one CLI case file (format in tests/cli/README.md).  Exit 0 = pass,
# 1 = fail, 77 = skip.  The case runs with bash in the case file's folder,
# with $CURATE_BIN first on PATH and $TMP a fresh scratch folder.
set -u
case_file=$(readlink -f "$1")
case_dir=$(dirname "$case_file")
name=$(basename "$case_file" .case)
: "${CURATE_BIN:?CURATE_BIN is not set (run through ctest)}"
base_tmp=${CURATE_TMP:-${TMPDIR:-/tmp}}
TMP=$(mktemp -d "$base_tmp/case.$name.XXXXXX")
export TMP
export PATH="$CURATE_BIN:$PATH"
trap 'rm -rf "$TMP"' EXIT

cmd="" stdin_file="" want_exit=0
declare -a checks=()
while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in ''|'#'*) continue ;; esac
    key=${line%% *}
    val=${line#* }
    [ "$key" = "$line" ] && val=""
    case "$key" in
        cmd) cmd=$val ;;
        stdin) stdin_file=$val ;;
        exit) want_exit=$val ;;
        requires-shared)
            if [ ! -d "${CURATE_SHARED:-/nonexistent}" ]; then
                echo "SKIP: ../shared is not present (needed by this case)"; exit 77
            fi ;;
        stdout|stdout-empty|stdout-grep|stdout-not-grep|stderr-grep|stderr-empty|file|file-grep|file-not-grep)
            checks+=("$key"$'\t'"$val") ;;
        *) echo "FAIL: $case_file: unknown directive '$key'"; exit 1 ;;
    esac
done < "$case_file"
[ -n "$cmd" ] || { echo "FAIL: $case_file: no cmd line"; exit 1; }

cd "$case_dir" || exit 1
if [ -n "$stdin_file" ]; then
    bash -c "$cmd" < "$stdin_file" > "$TMP/.stdout" 2> "$TMP/.stderr"
else
    bash -c "$cmd" < /dev/null > "$TMP/.stdout" 2> "$TMP/.stderr"
fi
got_exit=$?

fail=0
report() { echo "FAIL: $*"; fail=1; }
[ "$got_exit" = "$want_exit" ] || report "exit status $got_exit, expected $want_exit"
for c in "${checks[@]+"${checks[@]}"}"; do
    key=${c%%$'\t'*}
    val=${c#*$'\t'}
    case "$key" in
        stdout) cmp -s "$TMP/.stdout" "$val" || { report "stdout differs from $val"; diff <(head -c 4000 "$val") <(head -c 4000 "$TMP/.stdout") | head -20; } ;;
        stdout-empty) [ ! -s "$TMP/.stdout" ] || report "stdout is not empty" ;;
        stdout-grep) grep -Eq -- "$val" "$TMP/.stdout" || report "stdout does not match /$val/" ;;
        stdout-not-grep) ! grep -Eq -- "$val" "$TMP/.stdout" || report "stdout matches /$val/" ;;
        stderr-grep) grep -Eq -- "$val" "$TMP/.stderr" || report "stderr does not match /$val/" ;;
        stderr-empty) [ ! -s "$TMP/.stderr" ] || report "stderr is not empty" ;;
        file) f=${val%% *}; e=${val#* }
              cmp -s "$TMP/$f" "$e" || report "\$TMP/$f differs from $e" ;;
        file-grep) f=${val%% *}; e=${val#* }
              grep -Eq -- "$e" "$TMP/$f" 2>/dev/null || report "\$TMP/$f does not match /$e/" ;;
        file-not-grep) f=${val%% *}; e=${val#* }
              ! grep -Eq -- "$e" "$TMP/$f" 2>/dev/null || report "\$TMP/$f matches /$e/" ;;
    esac
done
if [ "$fail" != 0 ]; then
    echo "--- command: $cmd"
    echo "--- stdout (first 40 lines):"; head -40 "$TMP/.stdout"
    echo "--- stderr (first 40 lines):"; head -40 "$TMP/.stderr"
    exit 1
fi
echo "PASS: $name"
