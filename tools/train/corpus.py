#!/usr/bin/python3
"""Corpus builder: permissively licensed code found on this machine (Debian packages) and in a pinned set of
npm packages (installed by run_all.sh into tools/train/work/npm, git-ignored).

Writes
  tools/train/work/corpus/{train,valid}.jsonl   one JSON object per file: {"src", "path", "lang", "text"}
  tools/train/manifest.json                     (committed) every source: root, licence, files and bytes
                                                per split, plus the list of excluded npm packages and why.

The held-out split is BY FILE and deterministic: a file is held out when sha1(source + path) mod 1000 < 15
(1.5 %).  Selection inside a source is deterministic too (files sorted by sha1 of their path, taken until the
source's byte cap), so rerunning on the same machine reproduces the same corpus.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")

# SPDX ids accepted for npm packages (permissive only).  Everything else (GPL, LGPL, MPL, unknown, missing,
# "SEE LICENSE IN", dual licences with a copyleft option that we cannot verify) is excluded.
PERMISSIVE = {"MIT", "ISC", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0", "0BSD", "BSL-1.0", "Unlicense",
              "CC0-1.0", "Python-2.0"}

EXT_LANG = {
    ".py": "python",
    ".c": "c_cpp", ".h": "c_cpp", ".cc": "c_cpp", ".cpp": "c_cpp", ".cxx": "c_cpp", ".hpp": "c_cpp",
    ".hh": "c_cpp", ".ipp": "c_cpp",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
}

MAX_FILE_BYTES = 256 * 1024      # skip bundles / generated giants
MIN_FILE_BYTES = 64
HOLDOUT_PER_MILLE = 15


def sha1(s: str) -> str:
    return hashlib.sha1(s.encode("utf-8")).hexdigest()


def is_heldout(src: str, rel: str) -> bool:
    return int(sha1(src + "/" + rel)[:8], 16) % 1000 < HOLDOUT_PER_MILLE


def looks_generated(text: str) -> bool:
    lines = text.split("\n")
    if not lines:
        return True
    longest = max(len(l) for l in lines)
    avg = len(text) / max(1, len(lines))
    return longest > 2000 or avg > 200      # minified / machine-made


def walk(root: str, exclude_dirs=(), exts=None):
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in exclude_dirs and not x.startswith("."))
        for f in sorted(files):
            ext = os.path.splitext(f)[1]
            if f.endswith(".min.js") or ext not in EXT_LANG:
                continue
            if exts is not None and ext not in exts:
                continue
            p = os.path.join(d, f)
            if os.path.islink(p):
                continue
            out.append(p)
    return out


def system_sources():
    """(name, root, licence, file list, byte cap)."""
    srcs = []
    py = "/usr/lib/python3.11"
    if os.path.isdir(py):
        srcs.append(("cpython-3.11-stdlib", py, "PSF-2.0",
                     walk(py, exclude_dirs={"site-packages", "dist-packages", "__pycache__", "data",
                                            "test_lib2to3", "lib2to3"}, exts={".py"}),
                     40_000_000))
    for pkg, lic, cap in (("numpy", "BSD-3-Clause", 8_000_000), ("torch", "BSD-3-Clause", 12_000_000)):
        r = "/usr/lib/python3/dist-packages/" + pkg
        if os.path.isdir(r):   # Debian python3-numpy / python3-torch (see /usr/share/doc/python3-*/copyright)
            srcs.append((f"debian-python3-{pkg}", r, lic,
                         walk(r, exclude_dirs={"__pycache__", "_vendor", "third_party"}, exts={".py"}), cap))
    b = "/usr/include/boost"
    if os.path.isdir(b):
        srcs.append(("boost-headers", b, "BSL-1.0",
                     walk(b, exclude_dirs={"preprocessed", "detail_preprocessed"}, exts={".hpp", ".h", ".ipp"}),
                     22_000_000))
    llvm = "/usr/include/llvm-14"
    if os.path.isdir(llvm):
        srcs.append(("llvm-14-headers", llvm, "Apache-2.0 WITH LLVM-exception", walk(llvm, exts={".h"}),
                     10_000_000))
    return srcs


def npm_license(pkg: dict):
    lic = pkg.get("license")
    if isinstance(lic, dict):
        lic = lic.get("type")
    if lic is None and isinstance(pkg.get("licenses"), list) and len(pkg["licenses"]) == 1:
        lic = pkg["licenses"][0].get("type")
    if not isinstance(lic, str):
        return None
    lic = lic.strip().strip("()")
    # accept "A OR B" only when every option is permissive
    parts = [p.strip() for p in lic.replace(" or ", " OR ").split(" OR ")]
    if all(p in PERMISSIVE for p in parts):
        return lic
    return None


def npm_sources(npm_root: str):
    srcs, excluded = [], []
    nm = os.path.join(npm_root, "node_modules")
    if not os.path.isdir(nm):
        print(f"warning: {nm} missing (run run_all.sh, which installs the pinned npm set)", file=sys.stderr)
        return srcs, excluded
    pkg_dirs = []
    for d in sorted(os.listdir(nm)):
        if d.startswith("."):
            continue
        if d.startswith("@"):
            for s in sorted(os.listdir(os.path.join(nm, d))):
                pkg_dirs.append(os.path.join(nm, d, s))
        else:
            pkg_dirs.append(os.path.join(nm, d))
    for pd in pkg_dirs:
        try:
            with open(os.path.join(pd, "package.json"), encoding="utf-8") as f:
                pkg = json.load(f)
        except Exception:
            excluded.append({"package": os.path.relpath(pd, nm), "reason": "no readable package.json"})
            continue
        name = pkg.get("name", os.path.relpath(pd, nm))
        ver = pkg.get("version", "?")
        lic = npm_license(pkg)
        if lic is None:
            excluded.append({"package": f"{name}@{ver}", "reason": f"licence {pkg.get('license')!r} not accepted"})
            continue
        files = walk(pd, exclude_dirs={"node_modules", "test", "tests", "__tests__"})
        srcs.append((f"npm:{name}@{ver}", pd, lic, files, 3_000_000))
    return srcs, excluded


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--npm-root", default=os.path.join(WORK, "npm"))
    ap.add_argument("--out", default=os.path.join(WORK, "corpus"))
    ap.add_argument("--manifest", default=os.path.join(HERE, "manifest.json"))
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    srcs = system_sources()
    nsrcs, excluded = npm_sources(args.npm_root)
    srcs += nsrcs

    seen = set()
    manifest = {"holdout": f"by file: sha1(source/path) mod 1000 < {HOLDOUT_PER_MILLE}",
                "max_file_bytes": MAX_FILE_BYTES, "sources": [], "excluded_npm_packages": excluded}
    ftrain = open(os.path.join(args.out, "train.jsonl"), "w", encoding="utf-8")
    fvalid = open(os.path.join(args.out, "valid.jsonl"), "w", encoding="utf-8")
    totals = {}
    for name, root, lic, files, cap in srcs:
        rels = sorted((os.path.relpath(p, root) for p in files), key=lambda r: sha1(name + "/" + r))
        stats = {"train_files": 0, "train_bytes": 0, "valid_files": 0, "valid_bytes": 0, "bytes_by_lang": {}}
        used = 0
        for rel in rels:
            if used >= cap:
                break
            p = os.path.join(root, rel)
            try:
                sz = os.path.getsize(p)
                if sz < MIN_FILE_BYTES or sz > MAX_FILE_BYTES:
                    continue
                with open(p, "rb") as f:
                    raw = f.read()
                text = raw.decode("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            text = text.replace("\r\n", "\n")
            if "\0" in text or looks_generated(text):
                continue
            h = hashlib.sha1(text.encode("utf-8")).digest()
            if h in seen:
                continue
            seen.add(h)
            lang = EXT_LANG[os.path.splitext(rel)[1]]
            nb = len(text.encode("utf-8"))
            used += nb
            split = "valid" if is_heldout(name, rel) else "train"
            (fvalid if split == "valid" else ftrain).write(
                json.dumps({"src": name, "path": rel, "lang": lang, "text": text}) + "\n")
            stats[split + "_files"] += 1
            stats[split + "_bytes"] += nb
            stats["bytes_by_lang"][lang] = stats["bytes_by_lang"].get(lang, 0) + nb
            t = totals.setdefault(lang, {"train_bytes": 0, "valid_bytes": 0, "train_files": 0, "valid_files": 0})
            t[split + "_bytes"] += nb
            t[split + "_files"] += 1
        if stats["train_files"] + stats["valid_files"] == 0:
            continue
        manifest["sources"].append({"source": name, "root": root, "license": lic, "byte_cap": cap, **stats})
        print(f"{name:40s} {lic:32s} train {stats['train_bytes']:>10,d} B  valid {stats['valid_bytes']:>9,d} B")
    ftrain.close()
    fvalid.close()
    manifest["totals_by_language"] = totals
    with open(args.manifest, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=False)
        f.write("\n")
    for lang, t in sorted(totals.items()):
        print(f"total {lang:12s} train {t['train_bytes']:>11,d} B ({t['train_files']} files)  "
              f"valid {t['valid_bytes']:>9,d} B ({t['valid_files']} files)")


if __name__ == "__main__":
    main()
