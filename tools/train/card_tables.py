#!/usr/bin/python3
"""Print the Markdown tables of docs/MODEL_CARD.md from manifest.json, work/eval/results.json and the
training logs, so that the card's numbers are the measured ones."""

from __future__ import annotations

import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")


def main():
    man = json.load(open(os.path.join(HERE, "manifest.json")))
    print("### Data\n")
    print("| source | licence | train files | train bytes | held-out files | held-out bytes |")
    print("|---|---|---:|---:|---:|---:|")
    npm = {"files": 0, "bytes": 0, "vfiles": 0, "vbytes": 0, "lic": set(), "n": 0}
    for s in man["sources"]:
        if s["source"].startswith("npm:"):
            npm["files"] += s["train_files"]; npm["bytes"] += s["train_bytes"]
            npm["vfiles"] += s["valid_files"]; npm["vbytes"] += s["valid_bytes"]
            npm["lic"].add(s["license"]); npm["n"] += 1
            continue
        print(f"| {s['source']} (`{s['root']}`) | {s['license']} | {s['train_files']:,d} | {s['train_bytes']:,d} | "
              f"{s['valid_files']:,d} | {s['valid_bytes']:,d} |")
    print(f"| {npm['n']} npm packages (pinned; per-package licences in `tools/train/manifest.json`) | "
          f"{', '.join(sorted(npm['lic']))} | {npm['files']:,d} | {npm['bytes']:,d} | {npm['vfiles']:,d} | "
          f"{npm['vbytes']:,d} |")
    print("\n| language | train bytes | held-out bytes |\n|---|---:|---:|")
    for lang, t in sorted(man["totals_by_language"].items()):
        print(f"| {lang} | {t['train_bytes']:,d} | {t['valid_bytes']:,d} |")
    ex = man.get("excluded_npm_packages", [])
    print(f"\nExcluded npm packages: {len(ex)}" + ("" if not ex else ": " + ", ".join(
        f"{e['package']} ({e['reason']})" for e in ex)))

    print("\n### Training runs\n")
    print("| run | steps | tokens | wall time | last logged loss (bits/token) | held-out loss (nats/token) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in ("target", "draft-plain", "draft"):
        p = os.path.join(WORK, "logs", name + ".log")
        if not os.path.exists(p):
            continue
        txt = open(p).read()
        done = re.findall(r"done: step (\d+), ([\d,]+) tokens, ([\d.]+) min; held-out loss ([\d.]+)", txt)
        steps = re.findall(r"bits/token\)", txt)
        last = re.findall(r"\(([\d.]+) bits/token\)", txt)
        if done:
            st, tok, mins, vl = done[-1]
            print(f"| {name} | {int(st):,d} | {tok} | {mins} min | {last[-1] if last else '?'} | {vl} |")
        else:
            print(f"| {name} | (running / incomplete) | | | {last[-1] if last else '?'} | |")

    p = os.path.join(WORK, "eval", "results.json")
    if not os.path.exists(p):
        return
    r = json.load(open(p))
    print("\n### Held-out bits per byte\n")
    print("| language | files | bytes | bytes/token | draft | target | gzip -9 | xz -9e |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for lang, row in sorted(r["bits_per_byte"].items()):
        print(f"| {lang} | {row['files']} | {row['bytes']:,d} | {row['bytes_per_token']} | {row['draft']:.3f} | "
              f"{row['target']:.3f} | {row['gzip -9']:.3f} | {row['xz -9e']:.3f} |")
    a = r["bits_per_byte_all"]
    print(f"| **all** | | | | {a['draft']:.3f} | {a['target']:.3f} | {a['gzip -9']:.3f} | {a['xz -9e']:.3f} |")
    print("\n### Speculative decoding\n")
    print(f"Greedy top-1 agreement, teacher-forced on held-out text: {r['agreement_teacher_forced_heldout']:.3f}; "
          f"along the target's own greedy continuations: {r['agreement_on_target_greedy']:.3f}.\n")
    print("| γ (draft length) | tokens per target pass (simulated) | i.i.d. estimate (1-α^(γ+1))/(1-α) |")
    print("|---:|---:|---:|")
    for g, v in r["speculative"].items():
        print(f"| {g} | {v['tokens_per_target_pass']:.2f} | {v['iid_formula']:.2f} |")
    print("\n### Samples (greedy)\n")
    for s in r["samples"]:
        print(f"* `{s['prompt']!r}`{' (token healing)' if s['healed'] else ''}\n"
              f"  * target: `{s['target']!r}`\n  * draft: `{s['draft']!r}`")
    print("\n### FIM\n")
    for s in r["fim"]:
        print(f"* prefix `{s['prefix']!r}` suffix `{s['suffix']!r}`\n"
              f"  * target middle: `{s['target']!r}`\n  * draft middle: `{s['draft']!r}`")


if __name__ == "__main__":
    main()
