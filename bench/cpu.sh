#!/usr/bin/env bash
# One timed run on the bench fleet, with the CPU the whole machine used meanwhile (on one
# machine the hosts' sshd and shells count too): wall, user and sys of the command's process
# tree (GNU time), and the machine's busy time from /proc/stat. Hosts h1..N are reset first.
#   bench/cpu.sh N recover [ARGS...]          the ten-task workload, --forks N
#   bench/cpu.sh N floor [SSH OPTIONS...]     the one-session floor (e.g. -o KexAlgorithms=...)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:?N}; what=${2:?recover or floor}; shift 2
B=/tmp/recover-bench; LAB=${RECOVER_LAB:-/tmp/recover-lab}
[ -s "$B/sshd/$n.pid" ] || { echo "the bench fleet is down: bench/fleet up $n" >&2; exit 2; }
for i in $(seq "$n"); do rm -rf "$B/h$i"; done
case $what in
  recover) cmd=(target/release/recover play bench/workload/recover.yml -i bench/out/inventory.yml --forks "$n" --yes --output json "$@") ;;
  floor)
    ssh="ssh -p 2222 -i $LAB/ssh/id_ed25519 -o UserKnownHostsFile=$B/known_hosts -o BatchMode=yes -o IdentitiesOnly=yes $*"
    cmd=(sh -c "seq $n | xargs -P $n -I{} sh -c \"$ssh wooo@127.0.1.{} 'H=h{} sh -s' < bench/workload/ten.sh > /dev/null\"") ;;
  *) echo "recover or floor, not $what" >&2; exit 2 ;;
esac
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
b0=$(busy)
/usr/bin/time -o /tmp/bench-cpu.t -f "%e %U %S" "${cmd[@]}" > /dev/null
b1=$(busy)
read -r wall user sys < /tmp/bench-cpu.t
echo "$what $n hosts: wall ${wall} s, process tree user ${user} s sys ${sys} s, machine busy $(awk -v a="$b0" -v b="$b1" 'BEGIN { printf "%.2f", (b - a) / 100 }') s"
