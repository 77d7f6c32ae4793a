#!/usr/bin/env bash
# Counts that do not depend on how busy the machine is, for before/after comparisons of the
# engine (issue 6), on the bench fleet (bench/fleet up N first):
#   - instructions executed by recover's own process for the ten-task workload on N hosts
#     (valgrind --tool=callgrind; the ssh clients it starts are not counted);
#   - on one host (h1, its sshd traced with strace): the remote commands recover sent, the
#     programs started there and the processes forked there, against the floor's one session.
#   bench/counts.sh [BINARY] [N]      BINARY defaults to target/release/recover, N to 50
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/recover}; n=${2:-50}
B=/tmp/recover-bench; LAB=${RECOVER_LAB:-/tmp/recover-lab}
command -v valgrind >/dev/null && command -v strace >/dev/null || { echo "needs valgrind and strace (apt install valgrind strace)" >&2; exit 2; }
[ -s "$B/sshd/1.pid" ] || { echo "the bench fleet is down: bench/fleet up $n" >&2; exit 2; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
# An inventory of the first N hosts of the fleet's.
awk -v n="$n" '/ansible_host/ { split($1, a, "h"); if (a[2] + 0 > n) next } { print }' bench/out/inventory.yml > "$out/inv.yml"
[ "$(grep -c ansible_host "$out/inv.yml")" = "$n" ] || { echo "the fleet has fewer than $n hosts: bench/fleet up $n" >&2; exit 2; }
reset() { for i in $(seq "$n"); do rm -rf "$B/h$i"; done; }

reset
valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" play bench/workload/recover.yml -i "$out/inv.yml" --forks "$n" --yes --output json > /dev/null 2> "$out/cg.err"
echo "instructions in recover's own process, $n hosts: $(grep -o 'Collected : [0-9]*' "$out/cg.err" | grep -o '[0-9]*')"

# What one host sees. strace follows the sshd listener and everything it forks.
trace() { # label cmd...
  local label=$1; shift
  rm -rf "$B/h1"
  strace -f -qq -e trace=execve,clone,clone3,fork,vfork -o "$out/st" -p "$(cat "$B/sshd/1.pid")" & local sp=$!
  sleep 0.5
  "$@" > /dev/null
  sleep 0.5; kill "$sp"; wait "$sp" 2>/dev/null || true
  python3 - "$label" "$out/st" <<'PY'
import collections, re, sys
label, path = sys.argv[1], sys.argv[2]
progs = collections.Counter(); pending = {}; forks = 0
for l in open(path):
    m = re.match(r'(\d+) +(clone3?|v?fork)\(', l)
    if m and '= -1' not in l:
        forks += 1
    m = re.match(r'(\d+) +execve\("([^"]+)"', l)
    if m:
        if 'unfinished' in l:
            pending[m.group(1)] = m.group(2)
        elif l.rstrip().endswith('= 0'):
            progs[m.group(2).rsplit('/', 1)[-1]] += 1
        continue
    m = re.match(r'(\d+) +<\.\.\. execve resumed>.*= (-?\d+)', l)
    if m and m.group(1) in pending:
        p = pending.pop(m.group(1))
        if m.group(2) == '0':
            progs[p.rsplit('/', 1)[-1]] += 1
print(f"{label}: {sum(progs.values())} programs started, {forks} forks on the host ({' '.join(f'{k} {v}' for k, v in progs.most_common())})")
PY
}
hook=$out/hook; printf '#!/bin/sh\necho "$3" >> %s/calls\n' "$out" > "$hook"; chmod +x "$hook"
: > "$out/calls"
trace "recover" env RECOVER_FAULT_HOOK="$hook" "$bin" play bench/workload/recover.yml -i "$out/inv.yml" --limit h1 --yes --output json
echo "  remote commands recover sent: $(wc -l < "$out/calls")"
trace "floor (one session)" sh -c "ssh -p 2222 -i $LAB/ssh/id_ed25519 -o UserKnownHostsFile=$B/known_hosts -o BatchMode=yes -o IdentitiesOnly=yes wooo@127.0.1.1 'H=h1 sh -s' < bench/workload/ten.sh"
