#!/usr/bin/env bash
# Near-duplicate quality of curate-dedupe at its DEFAULT settings: on a
# generated corpus with planted near duplicates (2-10% of words edited) and
# hard negatives (shared topic vocabulary, long shared boilerplate), both
# precision and recall must be at least 0.95.  Two seeds; the figures are
# printed.  See tests/cli/dedupe/quality.py for the corpus and the scoring.
set -u
: "${CURATE_BIN:?CURATE_BIN is not set (run through ctest)}"
if ! command -v python3 >/dev/null; then
    echo "SKIP: python3 is not installed"; exit 77
fi
here=$(dirname "$(readlink -f "$0")")
fail=0
for seed in 7 8; do
    python3 "$here/dedupe/quality.py" --bin "$CURATE_BIN" --seed "$seed" --min 0.95 || fail=1
done
exit $fail
