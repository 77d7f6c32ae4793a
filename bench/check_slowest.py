#!/usr/bin/env python3
"""One `recover check` pass against its slowest probe.

Every probe of the lab baseline is also run alone, as a pass of its own (a baseline holding
just that probe: its own host connection, its own process), and timed the same way. The
target (issue 6): a full pass within 1.5x of the slowest probe alone, not of their sum.
A second round adds a probe that takes 2 s (`sleep 2`) to show a pass waits for it once.

    bench/check_slowest.py [RUNS]      (the lab must be up: scripts/lab up)
"""
import json, os, statistics, subprocess, sys, tempfile, time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECOVER = os.path.join(ROOT, "target/release/recover")
LAB = os.path.join(ROOT, "inventory/baseline-lab.yml")
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5


def wall(baseline):
    """Wall time of one `recover check` process over `baseline` (seconds)."""
    t = time.perf_counter()
    out = subprocess.run([RECOVER, "check", "--baseline", baseline, "--output", "json", "-i", "inventory/lab.yml"], cwd=ROOT, capture_output=True, text=True)
    took = time.perf_counter() - t
    json.loads(out.stdout.splitlines()[0])  # a pass happened
    return took


def median_of(baseline):
    runs = [wall(baseline) for _ in range(RUNS)]
    return statistics.median(runs), runs


def write(doc, d, name):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        yaml.safe_dump(doc, f, allow_unicode=True, sort_keys=False)
    return p


def round_(doc, d, label):
    full = write(doc, d, "full.yml")
    alone = []
    for phase in doc["phases"]:
        for probe in phase["probes"]:
            one = {k: v for k, v in doc.items() if k not in ("phases", "alert_test", "automation_gate", "drift")}
            one["phases"] = [{"name": phase["name"], "probes": [probe]}]
            alone.append((probe["name"], median_of(write(one, d, "one.yml"))[0]))
    pass_median, runs = median_of(full)
    slowest = max(alone, key=lambda x: x[1])
    total = sum(t for _, t in alone)
    print(f"## {label}")
    print(f"probes: {len(alone)}; each alone, median of {RUNS}:")
    for name, t in sorted(alone, key=lambda x: -x[1]):
        print(f"  {t:6.3f} s  {name}")
    print(f"full pass:            median {pass_median:.3f} s  (runs: {' '.join(f'{r:.3f}' for r in runs)})")
    print(f"slowest probe alone:  {slowest[1]:.3f} s  ({slowest[0]})")
    print(f"sum of probes alone:  {total:.3f} s")
    print(f"pass / slowest: {pass_median / slowest[1]:.2f}x   pass / sum: {pass_median / total:.2f}x\n")


def main():
    with open(LAB) as f:
        doc = yaml.safe_load(f)
    doc["extends"] = os.path.join(ROOT, "inventory", doc.get("extends", "baseline.yml"))
    with tempfile.TemporaryDirectory() as d:
        round_(doc, d, "the lab baseline as shipped")
        doc["phases"][1]["probes"].append({"name": "a probe that takes 2 s", "type": "command", "host": "188", "command": "sleep 2", "timeout": 10})
        round_(doc, d, "plus one probe that takes 2 s")


if __name__ == "__main__":
    main()
