#!/usr/bin/python3
"""Plots `spark-ls bench spec --tsv` results: S(alpha) curves and the drafters' speed-ups on code.

usage: tools/bench/plot_spec.py OUT.png RESULTS.tsv [RESULTS.tsv ...]
The TSV files are merged (typically the code run's and the --oracle run's). Needs Debian's python3-matplotlib
(run with /usr/bin/python3).
"""
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CONFIGS = ["draft-model", "ngram", "suffix", "ngram+suffix", "ngram+suffix+draft-model"]


def load(paths):
    rows = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) != 3:
                    continue
                metric, x, value = parts
                rows.setdefault(metric, []).append((float(x), float(value)))
    return rows


def scalar(rows, metric):
    pts = rows.get(metric)
    return pts[0][1] if pts else None


def plot_salpha(ax, rows):
    styles = [
        ("oracle.oracle.adaptive.S", "oracle alone, adaptive gamma", "#4a7ab5", "-", "o"),
        ("oracle.oracle.best_fixed.S", "oracle alone, best fixed gamma", "#4a7ab5", ":", "s"),
        ("oracle.oracle+draft.adaptive.S", "oracle + draft model cost, adaptive", "#d0663a", "-", "o"),
        ("oracle.oracle+draft.best_fixed.S", "oracle + draft model cost, best fixed", "#d0663a", ":", "s"),
        ("oracle.oracle+draft.concurrent.adaptive.S", "oracle + draft model, concurrent drafting, adaptive", "#6a9a3a", "--", "^"),
    ]
    drawn = False
    for metric, label, color, ls, marker in styles:
        pts = sorted(rows.get(metric, []))
        if not pts:
            continue
        drawn = True
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=color, linestyle=ls, marker=marker, label=label)
        if metric.endswith("best_fixed.S"):
            gammas = dict(rows.get(metric.replace(".S", ".gamma"), []))
            for x, y in pts:
                if x in gammas:
                    ax.annotate(f"g={int(gammas[x])}", (x, y), textcoords="offset points", xytext=(-8, -13),
                                fontsize=7, color=color)
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("alpha (oracle drafter: acceptance set to alpha)")
    ax.set_ylabel("S = plain time / speculative time")
    ax.set_title("S(alpha) at real shapes" if drawn else "S(alpha): no --oracle results")
    if drawn:
        ax.legend(fontsize=8)


def drafter_parts(rows):
    """The request sets present: fim, replay, and their fixed-gamma runs (fim-g4, ...), in that order."""
    found = set()
    for metric in rows:
        m = re.match(r"^((fim|replay)(-g\d+)?)\.", metric)
        if m:
            found.add(m.group(1))
    return sorted(found, key=lambda p: (p.split("-")[0] != "fim", "-" in p, p))


def plot_drafters(ax, rows):
    parts = drafter_parts(rows)
    colors = {"fim": "#4a7ab5", "replay": "#6aa84f"}
    width = 0.8 / max(1, len(parts))
    for i, part in enumerate(parts):
        base, _, fixed = part.partition("-")
        label = ("FIM prompts" if base == "fim" else "edit replays") + (
            f", fixed gamma {fixed[1:]}" if fixed else ", adaptive gamma")
        means = [scalar(rows, f"{part}.{c}.speedup_mean") for c in CONFIGS]
        mins = [scalar(rows, f"{part}.{c}.speedup_min") for c in CONFIGS]
        xs = [j + (i - (len(parts) - 1) / 2) * width for j in range(len(CONFIGS))]
        ax.bar(xs, [m or 0 for m in means], width, color=colors[base], alpha=0.55 if fixed else 1.0,
               hatch="//" if fixed else None, edgecolor="white", label=f"{label}: mean")
        ax.scatter(xs, [m or 0 for m in mins], color="black", marker="_", s=120, zorder=3,
                   label="min over prompts" if i == 0 else None)
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.axhline(0.95, color="#c00000", linestyle=":", linewidth=1, label="goal: no prompt below 0.95x")
    goal = scalar(rows, "goal.replay_speedup")
    if goal:
        ax.axhline(goal, color="#6aa84f", linestyle="--", linewidth=1, label=f"goal: {goal:g}x on replays")
    ax.set_xticks(range(len(CONFIGS)), [c.replace("+", "+\n") for c in CONFIGS], fontsize=7)
    ax.set_ylabel("decode speed-up vs plain (same prompts)")
    ax.set_title("Drafters on code" if parts else "Drafters on code: no results")
    if parts:
        ax.legend(fontsize=7)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rows = load(sys.argv[2:])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    plot_salpha(ax1, rows)
    plot_drafters(ax2, rows)
    fig.tight_layout()
    fig.savefig(sys.argv[1], dpi=110)


if __name__ == "__main__":
    main()
