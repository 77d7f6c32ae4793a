"""Summarizes bench/out/results.csv: median and min-max per tool and size, and ratios."""
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
tools = ["floor-session", "floor-channels", "recover", "pyinfra", "ansible"]
print("| N | " + " | ".join(tools) + " | recover / floor | worst run: recover / floor | ansible / recover | pyinfra / recover |")
print("|---|" + "---|" * (len(tools) + 4))
for n in sorted({k[0] for k in data}):
    med = {t: statistics.median(data[(n, t)]) for t in tools if data.get((n, t))}
    cells = []
    for t in tools:
        v = data.get((n, t))
        cells.append(f"{statistics.median(v):.2f} s ({min(v):.2f}-{max(v):.2f})" if v else "-")
    ratio = lambda a, b: f"{med[a] / med[b]:.2f}x" if a in med and b in med and med[b] > 0 else "-"
    # The same run's pair (the tools take turns within a run), the worst of the runs.
    pairs = [t["recover"] / t["floor-session"] for (m, _), t in by_run.items() if m == n and "recover" in t and t.get("floor-session")]
    worst = f"{max(pairs):.2f}x" if pairs else "-"
    print(f"| {n} | " + " | ".join(cells) + f" | {ratio('recover', 'floor-session')} | {worst} | {ratio('ansible', 'recover')} | {ratio('pyinfra', 'recover')} |")
print()
print("| N | peak RSS recover | peak RSS ansible (largest process) | peak RSS pyinfra |")
print("|---|---|---|---|")
for n in sorted({k[0] for k in rss}):
    g = lambda t: f"{statistics.median(rss[(n, t)]) / 1024:.0f} MiB ({min(rss[(n, t)]) / 1024:.0f}-{max(rss[(n, t)]) / 1024:.0f})" if rss.get((n, t)) else "-"
    print(f"| {n} | {g('recover')} | {g('ansible')} | {g('pyinfra')} |")
# Facts (issue 16): recover with gather_facts against the floor plus its gathering round trip,
# and what gathering costs each tool.
if any(t.endswith("-facts") for (_, t) in data):
    print()
    print("| N | floor + facts | recover with facts | recover with facts / (floor + facts) | recover: facts cost | ansible with facts | ansible: facts cost |")
    print("|---|---|---|---|---|---|---|")
    for n in sorted({k[0] for k in data}):
        m = lambda t: statistics.median(data[(n, t)]) if data.get((n, t)) else None
        ff, rf, r, af, a = m("floor-facts"), m("recover-facts"), m("recover"), m("ansible-facts"), m("ansible")
        f = lambda v: f"{v:.2f} s" if v is not None else "-"
        q = lambda a_, b_: f"{a_ / b_:.2f}x" if a_ is not None and b_ else "-"
        print(f"| {n} | {f(ff)} | {f(rf)} | {q(rf, ff)} | {q(rf, r)} | {f(af)} | {q(af, a)} |")
