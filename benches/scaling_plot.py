#!/usr/bin/env python3
"""Plots target/scaling.csv (written by `cargo bench --bench scaling`) as benches/scaling.png.

Usage: python3 benches/scaling_plot.py [CSV] [PNG] [ROUND_TRIP_MS]   (needs matplotlib, e.g. in a venv:
python3 -m venv /tmp/plot && /tmp/plot/bin/pip install matplotlib && /tmp/plot/bin/python ...)

Left: signatures/s against pool size (= caller threads), with and without a capacity limit,
beside the ideal N / round trip. Right: p50 and p99 latency of one signature against pool size.
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

source = sys.argv[1] if len(sys.argv) > 1 else "target/scaling.csv"
target = sys.argv[2] if len(sys.argv) > 2 else "benches/scaling.png"
latency_ms = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0

rows = list(csv.DictReader(open(source)))
by_capacity = {}
for row in rows:
    if row["sessions"] != row["threads"]:
        continue  # the one-session, 16-callers point is in the table, not on the curve
    by_capacity.setdefault(int(row["capacity"]), []).append(row)

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
sizes = sorted({int(r["sessions"]) for r in rows if r["sessions"] == r["threads"]})
left.plot(sizes, [n / latency_ms * 1000 for n in sizes], ":", color="grey", label=f"ideal: N / {latency_ms:g} ms")
for capacity, points in sorted(by_capacity.items()):
    points.sort(key=lambda r: int(r["sessions"]))
    n = [int(r["sessions"]) for r in points]
    name = "no capacity limit" if capacity == 0 else f"capacity {capacity} in flight ({capacity / latency_ms * 1000:,.0f}/s)"
    left.plot(n, [float(r["per_second"]) for r in points], "o-", label=name)
    right.plot(n, [float(r["p50_us"]) / 1000 for r in points], "o-", label=f"p50, {name}")
    right.plot(n, [float(r["p99_us"]) / 1000 for r in points], "s--", label=f"p99, {name}")
for rate, hsms in ((3000, 2), (4500, 3), (7000, 6)):
    left.axhline(rate, color="red", linewidth=0.5, linestyle="--")
    left.annotate(f"AWS: {hsms} x hsm2m.medium, P-256", (sizes[0], rate * 1.04), fontsize=7, color="red")
left.set_xscale("log", base=2)
left.set_yscale("log")
left.set_xticks(sizes, [str(s) for s in sizes])
left.set_xlabel("sessions = caller threads")
left.set_ylabel("signatures/s")
left.set_title(f"Throughput, {latency_ms:g} ms simulated round trip")
left.legend(fontsize=8)
left.grid(alpha=0.3)
right.set_xscale("log", base=2)
right.set_yscale("log")
right.set_xticks(sizes, [str(s) for s in sizes])
slowest = max(float(r["p99_us"]) / 1000 for points in by_capacity.values() for r in points)
right.set_yticks([t for t in (1, 2, 3, 5, 10, 20, 50, 100, 200, 500) if t < slowest * 1.5])
right.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
right.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
right.set_xlabel("sessions = caller threads")
right.set_ylabel("ms per signature (caller's view)")
right.set_title("Latency")
right.legend(fontsize=7)
right.grid(alpha=0.3, which="both")
fig.tight_layout()
fig.savefig(target, dpi=110)
print(f"wrote {target}")
