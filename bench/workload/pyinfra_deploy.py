# The same workload as a pyinfra deploy.
# BENCH_REPEAT=5 runs it five times over (the fifty-step workload).
import os

from pyinfra import host
from pyinfra.operations import files, server

d = f"/tmp/recover-bench/{host.data.bench_name}/d"
for _ in range(int(os.environ.get("BENCH_REPEAT", "1"))):
    server.shell(name="true", commands=["true"])
    server.shell(name="uname", commands=["uname -r"])
    files.directory(name="directory", path=d)
    files.template(name="template", src="bench/workload/t_pyinfra.j2", dest=f"{d}/t.txt")
    files.template(name="template again", src="bench/workload/t_pyinfra.j2", dest=f"{d}/t.txt")
    server.shell(name="stat", commands=[f"stat {d}/t.txt"])
    server.shell(name="read hostname", commands=["cat /etc/hostname"])
    files.line(name="line", path=f"{d}/lines.txt", line="bench line")
    server.shell(name="10 KB", commands=["head -c 10240 /dev/zero | tr '\\0' a"])
    files.file(name="remove temp", path=f"{d}/tmp.txt", present=False)
