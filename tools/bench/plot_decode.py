#!/usr/bin/python3
"""Plots `spark-ls bench decode --tsv` results: verify cost(B)/cost(1) and decode vs roofline.

usage: tools/bench/plot_decode.py OUT.png LABEL=RESULTS.tsv [LABEL=RESULTS.tsv ...]
Needs Debian's python3-matplotlib (run with /usr/bin/python3).
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    rows = {}
    with open(path) as f:
        for line in f:
            metric, x, value = line.rstrip("\n").split("\t")
            rows.setdefault(metric, []).append((float(x), float(value)))
    return rows


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out = sys.argv[1]
    runs = [(arg.split("=", 1)[0], load(arg.split("=", 1)[1])) for arg in sys.argv[2:]]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for label, rows in runs:
        pts = sorted(rows.get("verify_cost_ratio", []))
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    ax1.axhline(1.15, color="grey", linestyle=":", linewidth=1)
    ax1.axhline(1.4, color="grey", linestyle=":", linewidth=1)
    ax1.set_xlabel("verify batch B (positions)")
    ax1.set_ylabel("cost(B) / cost(1)")
    ax1.set_title("Verify pass cost")
    ax1.legend()
    labels, decode, roof = [], [], []
    for label, rows in runs:
        frac = dict(rows.get("decode_roofline_fraction", []))
        for workers in (1, 2):
            if workers in frac:
                labels.append(f"{label}\n{workers} worker{'s' if workers > 1 else ''}")
                decode.append(100 * frac[workers])
    ax2.bar(range(len(decode)), decode, color="#4a7ab5")
    ax2.axhline(70, color="grey", linestyle=":", linewidth=1)
    ax2.set_xticks(range(len(decode)), labels, fontsize=8)
    ax2.set_ylabel("% of memory-bandwidth roofline")
    ax2.set_title("Decode")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
