#!/usr/bin/env bash
# The side-by-side benchmark: recover, ansible-playbook (plain and with Mitogen) and pyinfra
# running the same workload on N loopback sshd, with the SSH floor measured in the same run.
# Two workloads: ten steps per host, and the same ten five times over (fifty), so the cost
# per step shows apart from the handshake. Results: bench/out/results.csv; summary printed.
#   bench/run.sh "1 10 50" 5
#   TOOLS="floor-session recover recover-again" STEPS=50 bench/run.sh "1 10" 3
# Tools: floor-session (one `ssh host sh -s` per host: the floor), floor-channels (one ssh
# per command over a master), floor-facts (the floor plus recover's gathering script),
# recover, recover-facts, recover-again (the second of two runs within a minute, its
# connections kept by recover_ssh_persist), ansible, ansible-facts, ansible-mitogen
# (strategy mitogen_linear), pyinfra. A tool run on the fifty-step workload is named TOOL/50.
# Issue 34's workload, ten steps of a collection's module (bench/workload/collection.yml), runs
# as recover-collection, ansible-collection and ansible-mitogen-collection (the `ansible`
# collections from ANSIBLE_COLLECTIONS_PATH, else scripts/oracles' .oracles/collections):
#   TOOLS="recover-collection ansible-collection ansible-mitogen-collection" STEPS=10 bench/run.sh "1 10 50" 3
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${1:-"1 10 50"}; runs=${2:-5}
tools=${TOOLS:-"floor-session floor-channels floor-facts recover recover-facts recover-again ansible ansible-mitogen pyinfra"}
steps_list=${STEPS:-"10 50"}
want() { [[ " $tools " == *" $1 "* ]]; }
venv=bench/.venv
# The peers, pinned: what the figures in BENCHMARKS.md were measured with.
peers="ansible-core==2.19.14 pyinfra==3.10.0 mitogen==0.3.54"
[ -f "$venv/.peers" ] && [ "$(cat "$venv/.peers")" = "$peers" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install -q $peers; echo "$peers" > "$venv/.peers"; }
mitogen_strategy=$(ls -d "$venv"/lib/python3*/site-packages/ansible_mitogen/plugins/strategy | head -1)
cargo build --release -q
recover=${CARGO_TARGET_DIR:-target}/release/recover
# The workloads with gather_facts: true, made from the plain ones so they cannot drift apart;
# the floor with facts is the floor session plus recover's own gathering script in it (one
# more round trip's worth of work on the same connection).
mkdir -p bench/out
# The fifty-step workloads: each ten-step one with its tasks five times over.
times5() { # file: the header up to `tasks:`, then the task lines five times
  awk '/^  tasks:/{print; body=1; next} body{t=t $0 "\n"; next} {print} END{for(i=0;i<5;i++) printf "%s", t}' "$1"
}
times5 bench/workload/recover.yml > bench/out/recover-50.yml
times5 bench/workload/ansible.yml > bench/out/ansible-50.yml
for _ in 1 2 3 4 5; do grep -v '^#' bench/workload/ten.sh; done > bench/out/fifty.sh
cp bench/workload/ten.sh bench/out/ten.sh
for w in recover ansible; do
  sed 's/^  gather_facts: false$/  gather_facts: true/' bench/workload/$w.yml > bench/out/$w-facts.yml
  sed 's/^  gather_facts: false$/  gather_facts: true/' bench/out/$w-50.yml > bench/out/$w-facts-50.yml
done
cp bench/workload/recover.yml bench/out/recover-10.yml; cp bench/workload/ansible.yml bench/out/ansible-10.yml
cp bench/out/recover-facts.yml bench/out/recover-facts-10.yml; cp bench/out/ansible-facts.yml bench/out/ansible-facts-10.yml
cp bench/workload/t.j2 bench/out/t.j2
$recover facts-script > bench/out/facts.sh
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
floor_session() { # n script
  seq "$1" | xargs -P "$1" -I{} sh -c "ssh ${ssh_opts[*]} wooo@127.0.1.{} 'H=h{} sh -s' < $2 > /dev/null"
}
floor_facts() { # n script
  seq "$1" | xargs -P "$1" -I{} sh -c "cat $2 bench/out/facts.sh | ssh ${ssh_opts[*]} wooo@127.0.1.{} 'H=h{} sh -s' > /dev/null"
}
floor_channels() { # n script
  seq "$1" | xargs -P "$1" -I{} bash -c '
    s=/tmp/recover-bench/cm-{}; o="'"${ssh_opts[*]}"'"
    ssh $o -M -f -N -S $s wooo@127.0.1.{}
    while IFS= read -r line; do case "$line" in "#"*|"") continue;; esac; ssh -n $o -S $s wooo@127.0.1.{} "H=h{}; $line" > /dev/null; done < '"$2"'
    ssh $o -S $s -O exit wooo@127.0.1.{} 2>/dev/null'
}
export -f floor_session floor_facts floor_channels 2>/dev/null || true
for n in $sizes; do
  bench/fleet up "$n"
  for r in $(seq "$runs"); do
    for steps in $steps_list; do
      sfx=$([ "$steps" = 10 ] || echo "/$steps"); sh_=bench/out/$([ "$steps" = 10 ] && echo ten || echo fifty).sh
      want floor-session && measure "$n" "floor-session$sfx" "$r" bash -c "$(declare -p ssh_opts); $(declare -f floor_session); floor_session $n $sh_"
      want floor-channels && measure "$n" "floor-channels$sfx" "$r" bash -c "$(declare -p ssh_opts); $(declare -f floor_channels); floor_channels $n $sh_"
      want floor-facts && measure "$n" "floor-facts$sfx" "$r" bash -c "$(declare -p ssh_opts); $(declare -f floor_facts); floor_facts $n $sh_"
      want recover && measure "$n" "recover$sfx" "$r" $recover play bench/out/recover-$steps.yml -i bench/out/inventory.yml --forks "$n" --yes --output json
      want recover-facts && measure "$n" "recover-facts$sfx" "$r" $recover play bench/out/recover-facts-$steps.yml -i bench/out/inventory.yml --forks "$n" --yes --output json
      if want recover-again; then
        # An operator's loop: a run, then the same again within the minute; the second is measured.
        RECOVER_SSH_PERSIST=60 $recover play bench/out/recover-$steps.yml -i bench/out/inventory.yml --forks "$n" --yes --output json > /dev/null
        measure "$n" "recover-again$sfx" "$r" env RECOVER_SSH_PERSIST=60 $recover play bench/out/recover-$steps.yml -i bench/out/inventory.yml --forks "$n" --yes --output json
        $recover disconnect -i bench/out/inventory.yml > /dev/null
      fi
      want ansible && measure "$n" "ansible$sfx" "$r" env ANSIBLE_CONFIG=bench/workload/ansible.cfg "$venv/bin/ansible-playbook" -i bench/out/inventory.yml bench/out/ansible-$steps.yml -f "$n"
      want ansible-facts && measure "$n" "ansible-facts$sfx" "$r" env ANSIBLE_CONFIG=bench/workload/ansible.cfg "$venv/bin/ansible-playbook" -i bench/out/inventory.yml bench/out/ansible-facts-$steps.yml -f "$n"
      want ansible-mitogen && measure "$n" "ansible-mitogen$sfx" "$r" env ANSIBLE_CONFIG=bench/workload/ansible.cfg ANSIBLE_STRATEGY_PLUGINS="$mitogen_strategy" ANSIBLE_STRATEGY=mitogen_linear "$venv/bin/ansible-playbook" -i bench/out/inventory.yml bench/out/ansible-$steps.yml -f "$n"
      if [ "$steps" = 10 ]; then
        coll=${ANSIBLE_COLLECTIONS_PATH:-$PWD/.oracles/collections}
        want recover-collection && measure "$n" "recover-collection" "$r" env ANSIBLE_COLLECTIONS_PATH="$coll" RECOVER_ANSIBLE_PYTHON="$venv/bin/python" $recover play bench/workload/collection.yml -i bench/out/inventory.yml --forks "$n" --yes --output json
        want ansible-collection && measure "$n" "ansible-collection" "$r" env ANSIBLE_COLLECTIONS_PATH="$coll" ANSIBLE_CONFIG=bench/workload/ansible.cfg "$venv/bin/ansible-playbook" -i bench/out/inventory.yml bench/workload/collection.yml -f "$n"
        want ansible-mitogen-collection && measure "$n" "ansible-mitogen-collection" "$r" env ANSIBLE_COLLECTIONS_PATH="$coll" ANSIBLE_CONFIG=bench/workload/ansible.cfg ANSIBLE_STRATEGY_PLUGINS="$mitogen_strategy" ANSIBLE_STRATEGY=mitogen_linear "$venv/bin/ansible-playbook" -i bench/out/inventory.yml bench/workload/collection.yml -f "$n"
      fi
      want pyinfra && measure "$n" "pyinfra$sfx" "$r" env BENCH_REPEAT=$((steps / 10)) "$venv/bin/pyinfra" bench/out/inventory.py bench/workload/pyinfra_deploy.py -y --parallel "$n"
    done
  done
  bench/fleet down
done
python3 bench/summary.py "$csv"
