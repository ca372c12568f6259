#!/usr/bin/env bash
# The pre-commit verdict: unit, integration, e2e, docs and quality, in that order, stopping at
# the first failure. The last line is the verdict and the exit code matches it.
set -uo pipefail
cd "$(dirname "$0")/.."

# --bench adds the regression guard against the previous commit (make bench-compare BASE=HEAD~1).
targets="test-unit test-integration test-e2e-training test-docs quality"
if [ "${1:-}" = "--bench" ]; then
    targets="$targets bench-compare"
    export BASE=HEAD~1
fi

for target in $targets; do
    echo "==> make $target"
    if ! make --no-print-directory "$target"; then
        echo "make $target failed"
        echo "❌ Extraction broke something - do NOT commit"
        exit 1
    fi
done
echo "✅ Safe to commit"
