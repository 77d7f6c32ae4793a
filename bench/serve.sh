#!/usr/bin/env bash
# Issue 35's benchmark: how long the board and a 1,000-run history take to load from
# `recover serve` on the lab, and how many gate passes 20 watchers of the live board cause.
#   bench/serve.sh [RUNS] [REPEATS]      (default 1000 runs, 7 repeats; medians printed)
# A state folder of its own holds RUNS run logs (copies of one real run of the lab, each its own
# id); the server runs the lab's gates every 2 s. The lab must be up (scripts/lab up).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1000}
repeats=${2:-7}
bin=${RECOVER_BIN:-target/release/recover}
[ -x "$bin" ] || cargo build --release --quiet
state=$(mktemp -d /tmp/recover-bench-serve.XXXXXX)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$state"' EXIT
export RECOVER_STATE_DIR=$state RECOVER_SHARED_DIR=$state
play=$state/small.yml
printf -- "- hosts: '188'\n  gather_facts: false\n  tasks:\n    - command: echo hello\n    - debug: {msg: '{{ item }}'}\n      loop: [a, b, c]\n" > "$play"
"$bin" play "$play" -i inventory/lab.yml >/dev/null
one=$(ls "$state"/runs/*.jsonl | head -1)
for i in $(seq 2 "$runs"); do
  id=$(printf '%012x' "$i")
  sed "s/\"run_id\":\"[0-9a-f]*\"/\"run_id\":\"$id\"/" "$one" > "$state/runs/20261201T000000.$(printf '%06d' "$i")Z-$id.jsonl"
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" serve --listen "127.0.0.1:$port" --interval 2 -i inventory/lab.yml 2>/dev/null &
pid=$!
until curl -sf "http://127.0.0.1:$port/board.json" | grep -q '"passes":[1-9]'; do sleep 0.2; done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for page in / /runs; do
  ms=$(for _ in $(seq "$repeats"); do curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port$page"; done | awk '{printf "%.1f\n", $1*1000}' | median)
  echo "GET $page with $(ls "$state"/runs | wc -l) run logs: ${ms} ms (median of $repeats)"
done
before=$(curl -s "http://127.0.0.1:$port/board.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["passes"])')
start=$(date +%s.%N)
for _ in $(seq 20); do timeout 10 curl -sN "http://127.0.0.1:$port/events/board" >/dev/null 2>&1 & done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
after=$(curl -s "http://127.0.0.1:$port/board.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["passes"])')
secs=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
echo "20 watchers for ${secs} s: $((after - before)) gate passes (interval 2 s: at most $(python3 -c "print(int($secs // 2) + 1)") without them)"
