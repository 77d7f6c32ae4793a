# The floor: the workload's ten commands, for one remote sh. H is the host's name.
true
uname -r
mkdir -p /tmp/recover-bench/$H/d
printf 'host %s\n' "$H" > /tmp/recover-bench/$H/d/t.txt
printf 'host %s\n' "$H" > /tmp/recover-bench/$H/d/t.txt
stat /tmp/recover-bench/$H/d/t.txt
cat /etc/hostname
grep -qxF 'bench line' /tmp/recover-bench/$H/d/lines.txt 2>/dev/null || echo 'bench line' >> /tmp/recover-bench/$H/d/lines.txt
head -c 10240 /dev/zero | tr '\0' a
rm -f /tmp/recover-bench/$H/d/tmp.txt
