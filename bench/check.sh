#!/usr/bin/env bash
# One `recover check` pass over the lab baseline, against the same probes run
# one after another (--parallel 1, the SOP shell script's way), and against the
# sum of the probes' timeouts. Runs on the loopback lab only. Not part of CI.
#   bench/check.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
scripts/lab up >/dev/null
cargo build --release -q
r=target/release/recover
pass() { { "$r" check --output json --parallel "$1" || true; } | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["report"]["seconds"])'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
probes=$({ "$r" check --output json || true; } | python3 -c 'import json,sys; r=json.loads(sys.stdin.readline())["report"]; print(sum(len(g["probes"]) for g in r["gates"]))')
timeouts=$(( (probes - 1) * 5 ))   # every lab probe has the default 5 s timeout; the alert-test placeholder has none
par=(); seq=()
for _ in $(seq "$runs"); do par+=("$(pass 64)"); seq+=("$(pass 1)"); done
p=$(printf '%s\n' "${par[@]}" | median); s=$(printf '%s\n' "${seq[@]}" | median)
echo "probes: $probes (sum of their timeouts: ${timeouts}s)"
echo "check pass, concurrent:      median ${p}s  (runs: ${par[*]})"
echo "same probes one at a time:   median ${s}s  (runs: ${seq[*]})"
python3 -c "print(f'concurrent / one-at-a-time: {$p/$s:.2f}; concurrent / sum of timeouts: {$p/$timeouts:.3f}')"
