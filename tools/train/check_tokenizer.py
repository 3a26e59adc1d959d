#!/usr/bin/python3
"""Compare SentencePiece's token ids with (a) a Python re-implementation of llama.cpp's SPM tokenizer
(llm_tokenizer_spm: merge the highest-scoring adjacent pair whose concatenation is a vocabulary token, leftmost
first on ties; then unknown symbols fall back to <0xXX> byte tokens), reading the vocabulary from the GGUF, and
(b) `spark-ls tokenize` when a binary exists.  Snippets: pieces of held-out files.

  check_tokenizer.py --model models/spark-target.gguf [--spark-ls build/app/spark-ls] [--n 200]
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import subprocess
import sys
import tempfile

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
from gguf_ref import read_gguf  # noqa: E402


class LlamaCppSpm:
    def __init__(self, gguf_path):
        g = read_gguf(gguf_path)
        self.tokens = list(g.get("tokenizer.ggml.tokens"))
        self.scores = list(g.get("tokenizer.ggml.scores"))
        self.types = list(g.get("tokenizer.ggml.token_type"))
        self.add_space_prefix = bool(g.get("tokenizer.ggml.add_space_prefix", True))
        self.ids = {t: i for i, t in enumerate(self.tokens)}

    def byte_id(self, b):
        return self.ids[f"<0x{b:02X}>"]

    def encode(self, text):
        text = text.replace(" ", "\u2581")
        if self.add_space_prefix:
            text = "\u2581" + text
        syms = list(text)              # one symbol per code point
        n = len(syms)
        prev = list(range(-1, n - 1))
        nxt = list(range(1, n + 1))
        nxt[-1] = -1 if n else -1
        alive = [True] * n
        heap = []
        rev = {}

        def try_add(l, r):
            if l < 0 or r < 0:
                return
            s = syms[l] + syms[r]
            tid = self.ids.get(s)
            if tid is None:
                return
            heapq.heappush(heap, (-self.scores[tid], l, r, s))
            rev[s] = (syms[l], syms[r])

        for i in range(n - 1):
            try_add(i, i + 1)
        while heap:
            _, l, r, s = heapq.heappop(heap)
            if not alive[l] or not alive[r] or nxt[l] != r or syms[l] + syms[r] != s:
                continue
            syms[l] = s
            alive[r] = False
            nxt[l] = nxt[r]
            if nxt[r] >= 0:
                prev[nxt[r]] = l
            try_add(prev[l], l)
            try_add(l, nxt[l])
        out = []

        def resegment(s):
            tid = self.ids.get(s)
            if tid is not None:
                out.append(tid)
                return
            if s in rev:
                a, b = rev[s]
                resegment(a)
                resegment(b)
                return
            for b in s.encode("utf-8"):
                out.append(self.byte_id(b))

        i = 0 if n else -1
        while i >= 0 and i < n:
            if alive[i]:
                resegment(syms[i])
            i = nxt[i] if alive[i] else i + 1
        return out


def snippets(valid, n, seed=5):
    rng = random.Random(seed)
    docs = [json.loads(l)["text"] for l in open(valid, encoding="utf-8")]
    out = []
    for _ in range(n):
        t = docs[rng.randrange(len(docs))]
        a = rng.randrange(max(1, len(t) - 10))
        out.append(t[a:a + rng.randrange(20, 600)])
    out += ["def fibonacci(n):", "for (int i = 0; i < n; ", "import numpy as ", "\t\tx = 1;\n", "  ", "é ü → 😀",
            "#include <vector>\n\nint main() {\n    return 0;\n}\n"]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "spark-target.gguf"))
    ap.add_argument("--tok", default=os.path.join(HERE, "work", "tok", "spm.model"))
    ap.add_argument("--valid", default=os.path.join(HERE, "work", "corpus", "valid.jsonl"))
    ap.add_argument("--spark-ls", default=os.path.join(ROOT, "build", "app", "spark-ls"))
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args(argv)
    sp = spm.SentencePieceProcessor(model_file=args.tok)
    ll = LlamaCppSpm(args.model)
    have_bin = os.access(args.spark_ls, os.X_OK)
    snips = snippets(args.valid, args.n)
    bad_py, bad_bin, ntok = 0, 0, 0
    for s in snips:
        ref = sp.encode(s)
        ntok += len(ref)
        py = ll.encode(s)
        if py != ref:
            bad_py += 1
            if bad_py <= 3:
                print(f"llama.cpp-emulation mismatch on {s[:60]!r}:\n  spm {ref[:30]}\n  emu {py[:30]}")
        if have_bin:
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
                f.write(s)
            try:
                r = subprocess.run([args.spark_ls, "tokenize", "--model", args.model, "--file", f.name],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            finally:
                os.unlink(f.name)
            got = [int(x) for x in r.stdout.split()] if r.returncode == 0 else None
            if got != ref:
                bad_bin += 1
                if bad_bin <= 3:
                    print(f"spark-ls mismatch (rc {r.returncode}) on {s[:60]!r}:\n  spm      {ref[:30]}\n"
                          f"  spark-ls {None if got is None else got[:30]}  {r.stderr[:200]}")
    print(f"{len(snips)} snippets, {ntok} tokens: llama.cpp-algorithm emulation mismatches {bad_py}; "
          f"spark-ls mismatches {bad_bin if have_bin else 'n/a (no binary)'}")
    return 1 if bad_py or (have_bin and bad_bin) else 0


if __name__ == "__main__":
    sys.exit(main())
