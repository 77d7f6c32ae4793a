#!/usr/bin/env bash
# Template speed, as ratios in one run (issue 15): CPU per `recover render` of the shipped
# nginx role template (a typical role template: loops, filters, inventory variables), and per
# `recover play --syntax-check --dry-run` of each SOP playbook (everything a dry run does before
# its first connection: inventory, variables, the load-time template check, the baseline),
# each against the floor of starting the binary (`recover --version`) in the same run. The
# shell loop's own cost (a `/bin/true` a run, measured in the same run) is taken off each figure.
# Targets: under 5 ms a render (CPU, and wall), under 50 ms of CPU for a playbook's load and check.
#   bench/render.sh [N]     N runs of each (default 200); needs target/release/recover
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
R=target/release/recover
[ -x "$R" ] || { echo "build first: cargo build --release" >&2; exit 2; }
inv=inventory/lab.yml
# CPU (user+sys, ms) per run of the command, over n runs in one shell, less the loop's own.
loop=0
per_run() {
  /usr/bin/time -o /tmp/bench-render.t -f "%U %S %e" bash -c 'for ((i = 0; i < '"$n"'; i++)); do "$@" > /dev/null; done' _ "$@"
  awk -v n="$n" -v l="$loop" '{ printf "%.2f", ($1 + $2) * 1000 / n - l }' /tmp/bench-render.t
}
wall() { awk -v n="$n" -v l="$loop_wall" '{ printf "%.2f", $3 * 1000 / n - l }' /tmp/bench-render.t; }
loop=$(per_run /bin/true); loop_wall=0; loop_wall=$(wall)
floor=$(per_run "$R" --version)
render=$(per_run "$R" render roles/nginx/templates/188-all-sites.conf.j2 -i "$inv" --host 188); render_wall=$(wall)
echo "the shell loop: ${loop} ms CPU a run (taken off below)"
echo "start the binary (recover --version): ${floor} ms CPU a run"
echo "render roles/nginx/templates/188-all-sites.conf.j2 --host 188: ${render} ms CPU, ${render_wall} ms wall a run ($(awk -v a="$render" -v b="$floor" 'BEGIN { printf "%.1f", a / b }')x the floor; target < 5 ms)"
worst=0
for p in playbooks/*.yml; do
  ms=$(per_run "$R" play "$p" -i "$inv" --syntax-check --dry-run)
  echo "play $(basename "$p") --syntax-check --dry-run: ${ms} ms CPU a run ($(awk -v a="$ms" -v b="$floor" 'BEGIN { printf "%.1f", a / b }')x the floor; target < 50 ms)"
  worst=$(awk -v a="$ms" -v b="$worst" 'BEGIN { print (a > b) ? a : b }')
done
awk -v r="$render" -v rw="$render_wall" -v w="$worst" 'BEGIN { if (r >= 5 || rw >= 5 || w >= 50) { print "over target"; exit 1 } print "within target" }'
