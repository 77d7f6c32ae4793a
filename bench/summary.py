"""Summarizes bench/out/results.csv: per workload (ten steps, fifty steps: tools named TOOL/50),
the median and min-max per tool and size, and the ratios BENCHMARKS.md tracks."""
import csv, statistics, sys
from collections import defaultdict

rows = list(csv.DictReader(open(sys.argv[1])))
data = defaultdict(list)
rss = defaultdict(list)
by_run = defaultdict(dict)
for r in rows:
    try:
        data[(int(r["n"]), r["tool"])].append(float(r["seconds"]))
        rss[(int(r["n"]), r["tool"])].append(int(r["max_rss_kb"]))
        by_run[(int(r["n"]), int(r["run"]))][r["tool"]] = float(r["seconds"])
    except ValueError:
        pass
failed = sorted({r["tool"] for r in rows if r["tool"].endswith("-FAILED")})
if failed:
    print("FAILED runs (not timed):", ", ".join(failed))
sizes = sorted({k[0] for k in data})
tools = ["floor-session", "floor-channels", "recover", "recover-again", "pyinfra", "ansible-mitogen", "ansible"]


def med(n, t):
    v = data.get((n, t))
    return statistics.median(v) if v else None


def q(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"


for sfx, label in [("", "ten steps per host"), ("/50", "fifty steps per host")]:
    if not any(t.endswith(sfx) and (sfx or "/" not in t) for (_, t) in data):
        continue
    print(f"\n### {label}\n")
    print("| N | " + " | ".join(tools) + " | recover / floor | worst run: recover / floor | again / floor | pyinfra / recover | mitogen / recover | ansible / recover |")
    print("|---|" + "---|" * (len(tools) + 6))
    for n in sizes:
        cells = []
        for t in tools:
            v = data.get((n, t + sfx))
            cells.append(f"{statistics.median(v):.2f} s ({min(v):.2f}-{max(v):.2f})" if v else "-")
        m = lambda t: med(n, t + sfx)
        pairs = [x["recover" + sfx] / x["floor-session" + sfx] for (k, _), x in by_run.items() if k == n and "recover" + sfx in x and x.get("floor-session" + sfx)]
        worst = f"{max(pairs):.2f}x" if pairs else "-"
        print(f"| {n} | " + " | ".join(cells) + f" | {q(m('recover'), m('floor-session'))} | {worst} | {q(m('recover-again'), m('floor-session'))} | {q(m('pyinfra'), m('recover'))} | {q(m('ansible-mitogen'), m('recover'))} | {q(m('ansible'), m('recover'))} |")
    if any(t.startswith("floor-facts") for (_, t) in data):
        print()
        print("| N | floor + facts | recover with facts | recover with facts / (floor + facts) | recover: facts cost |")
        print("|---|---|---|---|---|")
        for n in sizes:
            m = lambda t: med(n, t + sfx)
            f = lambda v: f"{v:.2f} s" if v is not None else "-"
            print(f"| {n} | {f(m('floor-facts'))} | {f(m('recover-facts'))} | {q(m('recover-facts'), m('floor-facts'))} | {q(m('recover-facts'), m('recover'))} |")
print()
print("| N | peak RSS recover | peak RSS ansible (largest process) | peak RSS pyinfra |")
print("|---|---|---|---|")
for n in sizes:
    def g(t):
        v = rss.get((n, t))
        return f"{statistics.median(v) / 1024:.0f} MiB ({min(v) / 1024:.0f}-{max(v) / 1024:.0f})" if v else "-"
    print(f"| {n} | {g('recover')} | {g('ansible')} | {g('pyinfra')} |")
