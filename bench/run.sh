#!/usr/bin/env bash
# The side-by-side benchmark of issue 6: recover, ansible-playbook and pyinfra
# running the same ten-task workload on N loopback sshd, with the SSH floor
# measured in the same run. Results: bench/out/results.csv; summary printed.
#   bench/run.sh "1 10 50" 5
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${1:-"1 10 50"}; runs=${2:-5}
tools=${TOOLS:-"floor-session floor-channels recover ansible pyinfra"}   # a subset: TOOLS="floor-session recover"
# With facts (issue 16): TOOLS="floor-session floor-facts recover recover-facts ansible ansible-facts"
want() { [[ " $tools " == *" $1 "* ]]; }
venv=bench/.venv
[ -x "$venv/bin/pyinfra" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install -q ansible-core pyinfra; }
cargo build --release -q
# The workloads with gather_facts: true, made from the plain ones so they cannot drift apart;
# the floor with facts is the floor session plus recover's own gathering script in it (one
# more round trip's worth of work on the same connection).
mkdir -p bench/out
sed 's/^  gather_facts: false$/  gather_facts: true/' bench/workload/recover.yml > bench/out/recover-facts.yml
sed 's/^  gather_facts: false$/  gather_facts: true/' bench/workload/ansible.yml > bench/out/ansible-facts.yml
cp bench/workload/t.j2 bench/out/t.j2
target/release/recover facts-script > bench/out/facts.sh
LAB=${RECOVER_LAB:-/tmp/recover-lab}; B=/tmp/recover-bench
key="$LAB/ssh/id_ed25519"; kh="$B/known_hosts"
ssh_opts=(-p 2222 -i "$key" -o UserKnownHostsFile="$kh" -o BatchMode=yes -o IdentitiesOnly=yes)
csv=bench/out/results.csv
mkdir -p bench/out; echo "n,tool,run,seconds,max_rss_kb" > "$csv"
reset() { for i in $(seq "$1"); do rm -rf "$B/h$i"; done; }
measure() { # n tool run cmd...
  local n=$1 tool=$2 run=$3; shift 3
  reset "$n"
  local t; t=$( { /usr/bin/time -f '%e %M' "$@" > /dev/null 2>/tmp/bench-last.err; } 2>&1 | tail -1 ) || true
  if ! grep -q . <<< "$t" || ! [[ "$t" =~ ^[0-9.]+\ [0-9]+$ ]]; then t=$(tail -1 /tmp/bench-last.err); fi
  # A run that failed is recorded as such, never as a (fast) time.
  if grep -q "Command exited with non-zero status" /tmp/bench-last.err; then tool="$tool-FAILED"; fi
  echo "$n,$tool,$run,${t% *},${t#* }" >> "$csv"
  echo "  n=$n $tool run $run: ${t% *}s, ${t#* } KB"
}
floor_session() { # n
  seq "$1" | xargs -P "$1" -I{} sh -c "ssh ${ssh_opts[*]} wooo@127.0.1.{} 'H=h{} sh -s' < bench/workload/ten.sh > /dev/null"
}
floor_facts() { # n
  seq "$1" | xargs -P "$1" -I{} sh -c "cat bench/workload/ten.sh bench/out/facts.sh | ssh ${ssh_opts[*]} wooo@127.0.1.{} 'H=h{} sh -s' > /dev/null"
}
floor_channels() { # n
  seq "$1" | xargs -P "$1" -I{} bash -c '
    s=/tmp/recover-bench/cm-{}; o="'"${ssh_opts[*]}"'"
    ssh $o -M -f -N -S $s wooo@127.0.1.{}
    while IFS= read -r line; do case "$line" in "#"*|"") continue;; esac; ssh -n $o -S $s wooo@127.0.1.{} "H=h{}; $line" > /dev/null; done < bench/workload/ten.sh
    ssh $o -S $s -O exit wooo@127.0.1.{} 2>/dev/null'
}
export -f floor_session floor_facts floor_channels 2>/dev/null || true
for n in $sizes; do
  bench/fleet up "$n"
  for r in $(seq "$runs"); do
    want floor-session && measure "$n" floor-session "$r" bash -c "$(declare -p ssh_opts); $(declare -f floor_session); floor_session $n"
    want floor-channels && measure "$n" floor-channels "$r" bash -c "$(declare -p ssh_opts); $(declare -f floor_channels); floor_channels $n"
    want floor-facts && measure "$n" floor-facts "$r" bash -c "$(declare -p ssh_opts); $(declare -f floor_facts); floor_facts $n"
    want recover && measure "$n" recover "$r" target/release/recover play bench/workload/recover.yml -i bench/out/inventory.yml --forks "$n" --yes --output json
    want recover-facts && measure "$n" recover-facts "$r" target/release/recover play bench/out/recover-facts.yml -i bench/out/inventory.yml --forks "$n" --yes --output json
    want ansible && measure "$n" ansible "$r" env ANSIBLE_CONFIG=bench/workload/ansible.cfg "$venv/bin/ansible-playbook" -i bench/out/inventory.yml bench/workload/ansible.yml -f "$n"
    want ansible-facts && measure "$n" ansible-facts "$r" env ANSIBLE_CONFIG=bench/workload/ansible.cfg "$venv/bin/ansible-playbook" -i bench/out/inventory.yml bench/out/ansible-facts.yml -f "$n"
    want pyinfra && measure "$n" pyinfra "$r" "$venv/bin/pyinfra" bench/out/inventory.py bench/workload/pyinfra_deploy.py -y --parallel "$n"
  done
  bench/fleet down
done
python3 bench/summary.py "$csv"
