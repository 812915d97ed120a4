#!/usr/bin/env bash
# curate-clean's text stages (UTF-8 repair, control and invisible character
# removal, NFC/NFKC, whitespace) under every cleaning option against an
# independent Python reference (unicodedata, bytes.decode 'replace'), with
# byte-exact passthrough and read = written + rejected checked on the way.
# See tests/cli/clean/reference.py.
set -u
: "${CURATE_BIN:?CURATE_BIN is not set (run through ctest)}"
if ! command -v python3 >/dev/null; then
    echo "SKIP: python3 is not installed"; exit 77
fi
here=$(dirname "$(readlink -f "$0")")
python3 "$here/clean/reference.py" --bin "$CURATE_BIN" --seed 1 &&
python3 "$here/clean/reference.py" --bin "$CURATE_BIN" --seed 2 --records 1000
