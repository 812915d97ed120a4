#!/usr/bin/env bash
# curate-dedupe --mode exact at every --normalize level against an
# independent Python reference (unicodedata NFKC, str.casefold): same kept
# lines, same dup_of on every reject.  See tests/cli/dedupe/exact_reference.py.
set -u
: "${CURATE_BIN:?CURATE_BIN is not set (run through ctest)}"
if ! command -v python3 >/dev/null; then
    echo "SKIP: python3 is not installed"; exit 77
fi
here=$(dirname "$(readlink -f "$0")")
python3 "$here/dedupe/exact_reference.py" --bin "$CURATE_BIN" --seed 3 &&
python3 "$here/dedupe/exact_reference.py" --bin "$CURATE_BIN" --seed 4 --records 1000
