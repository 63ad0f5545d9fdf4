#!/usr/bin/env bash
# Run `hub demo` N times in a row (default 10) and print how many passed.
# Each run gets its own work directory, so runs never share a SQLite file.
set -u
n="${1:-10}"
here="$(cd "$(dirname "$0")/.." && pwd)"
hub="${HUB_BIN:-$here/.venv/bin/hub}"
logs="$(mktemp -d "${TMPDIR:-/tmp}/hub-demo-runs.XXXXXX")"
passed=0
for i in $(seq 1 "$n"); do
    work="$logs/run-$i"
    mkdir -p "$work"
    if (cd "$work" && timeout 300 "$hub" demo --quiet >"$work/out.log" 2>&1); then
        passed=$((passed + 1))
    else
        echo "run $i failed: $(grep -m1 -E 'demo failed|Error' "$work/out.log" || tail -1 "$work/out.log")"
    fi
done
echo "hub demo passed $passed of $n runs (logs in $logs)"
[ "$passed" -eq "$n" ]
