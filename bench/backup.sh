#!/usr/bin/env bash
# The backup module against `tar czf` of the same 2 GiB folder on the same host (lab host 188,
# which is this machine): wall time, median of RUNS, alternating, warm page cache for both.
# The module does more than tar czf: it measures the source and free space first, writes to
# .partial and renames, records the sha256, reads the archive back end to end (entry count and
# sha256) and writes a manifest. Not part of CI.
#   bench/backup.sh [RUNS] [GIB]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}; gib=${2:-2}
scripts/lab up >/dev/null
cargo build --release -q
LAB=${RECOVER_LAB:-/tmp/recover-lab}
src="$LAB/188/bench-backup/data"; out="$LAB/188/bench-backup/out"
if [ "$(du -sb "$src" 2>/dev/null | cut -f1)" != "$(cat "$src/../size" 2>/dev/null)" ] || [ "$(cat "$src/../gib" 2>/dev/null)" != "$gib" ]; then
  # A mix like a data host's: text logs (compress well), base64 text (compresses to ~75%),
  # random bytes (incompressible, like compressed blobs); 1/3 each, in 64 MiB files.
  rm -rf "$src"; mkdir -p "$src/logs" "$src/text" "$src/blobs"
  per=$(( gib * 1024 / 3 / 64 ))
  set +o pipefail   # `yes | head` ends yes with SIGPIPE, as intended
  for i in $(seq "$per"); do
    yes "2026-11-24T03:00:0$((i % 10)) host=188 level=info msg=\"checkpoint complete: wrote $i buffers\" lsn=0/$RANDOM$i" | head -c $((64 << 20)) > "$src/logs/log$i"
    head -c $((48 << 20)) /dev/urandom | base64 -w 76 | head -c $((64 << 20)) > "$src/text/t$i"
    head -c $((64 << 20)) /dev/urandom > "$src/blobs/b$i"
  done
  set -o pipefail
  du -sb "$src" | cut -f1 > "$src/../size"; echo "$gib" > "$src/../gib"
  chown -R ollama: "$LAB/188/bench-backup"
fi
echo "source: $(du -sh "$src" | cut -f1) in $(find "$src" -type f | wc -l) files; pigz: $(command -v pigz || echo none)"
cat "$src"/*/* > /dev/null   # warm the page cache
pb=$(mktemp --suffix .yml)
printf -- '- hosts: data\n  tasks:\n    - backup:\n        path: "%s"\n        service: bench\n        component: data\n' "$src" > "$pb"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t_tar=(); t_rec=()
for r in $(seq "$runs"); do
  rm -rf "$out"; mkdir -p "$out"; chown ollama: "$out"
  s=$(date +%s.%N); sudo -u ollama tar czf "$out/plain.tar.gz" -C / "${src#/}"; e=$(date +%s.%N)
  t_tar+=("$(echo "$e - $s" | bc)"); size_tar=$(stat -c %s "$out/plain.tar.gz")
  rm -rf "$out"; mkdir -p "$out"; chown ollama: "$out"
  s=$(date +%s.%N); target/release/recover play "$pb" -e "recover_backup_root=$out" --output json > /tmp/bench-backup.json; e=$(date +%s.%N)
  grep -q '"failed":0' /tmp/bench-backup.json || { echo "the backup run failed:"; cat /tmp/bench-backup.json; exit 1; }
  t_rec+=("$(echo "$e - $s" | bc)"); size_rec=$(stat -c %s "$out"/*.tar.gz)
  echo "run $r: tar czf ${t_tar[-1]}s ($size_tar bytes), recover backup ${t_rec[-1]}s ($size_rec bytes)"
done
rm -f "$pb"; rm -rf "$out"
a=$(printf '%s\n' "${t_tar[@]}" | median); b=$(printf '%s\n' "${t_rec[@]}" | median)
bytes=$(cat "$src/../size")
python3 -c "a,b,n=$a,$b,$bytes; print(f'tar czf: median {a:.2f} s ({n/a/2**20:.0f} MiB/s); recover backup: median {b:.2f} s ({n/b/2**20:.0f} MiB/s); recover / tar czf: {b/a:.2f}x')"
