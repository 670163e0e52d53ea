#!/usr/bin/env bash
# The loaded-machine rule: the whole suite must pass round after round while the machine is busy.
# Each round runs COPIES (default 2) copies of the suite at once, so each copy competes for the CPU
# the way CI's busy 2-core machine makes it; a test that only fails like this waits on a guessed
# time instead of a condition. Exits 1 if any copy of any round failed, naming the failed tests.
#
#   bash scripts/test-under-load.sh [ROUNDS] [-- PYTEST ARGS...]     (ROUNDS default 5)
#   COPIES=3 bash scripts/test-under-load.sh 2 -- -q tests/app
#
# Logs: one file per round and copy in $LOG_DIR (default: a new /tmp/syncd-under-load.* directory).
set -uo pipefail
cd "$(dirname "$0")/.."

rounds="${1:-5}"
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
copies="${COPIES:-2}"
logs="${LOG_DIR:-$(mktemp -d /tmp/syncd-under-load.XXXXXX)}"
mkdir -p "$logs"
echo "test-under-load: $rounds round(s) of $copies parallel copies of: scripts/test.sh $*; logs in $logs"

failed_rounds=0
for round in $(seq 1 "$rounds"); do
    started=$SECONDS
    pids=()
    for copy in $(seq 1 "$copies"); do
        bash scripts/test.sh "$@" >"$logs/round-$round-copy-$copy.log" 2>&1 &
        pids+=("$!")
    done
    round_failed=0
    for copy in $(seq 1 "$copies"); do
        log="$logs/round-$round-copy-$copy.log"
        if wait "${pids[$((copy - 1))]}"; then
            echo "round $round copy $copy: ok   $(grep -E '^[0-9]+ passed|passed' "$log" | tail -1)"
        else
            round_failed=1
            echo "round $round copy $copy: FAIL $(grep -E '(passed|failed|error)' "$log" | tail -1)"
            grep -E '^(FAILED|ERROR) ' "$log" | sed -e 's/^/    /'
        fi
    done
    echo "round $round: $((SECONDS - started)) s"
    failed_rounds=$((failed_rounds + round_failed))
done
echo "test-under-load: $((rounds - failed_rounds))/$rounds round(s) green"
[ "$failed_rounds" -eq 0 ]
