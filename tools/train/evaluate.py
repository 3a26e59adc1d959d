#!/usr/bin/python3
"""Evaluate the exported models (the shipped GGUF weights, dequantised) on the held-out split.

  evaluate.py --draft models/spark-draft.gguf --target models/spark-target.gguf

Reports (printed, and written as JSON to tools/train/work/eval/results.json):
  * bits per byte per language on held-out files (up to --bytes-per-lang of whole files per language, in the
    split's file order), next to `gzip -9` and `xz -9e` on the concatenation of the same files.  The models score
    each file separately, in non-overlapping windows of context_length-1 tokens each preceded by BOS.
  * greedy top-1 agreement of draft and target, teacher-forced on held-out text;
  * speculative-decoding simulation: for --n-prompts held-out prompts the target's own greedy continuation
    (--gen tokens) is generated, and for draft length gamma = 2..8 the number of tokens produced per target
    pass is counted exactly (greedy verification accepts the draft's tokens while they equal the target's).
  * sample completions (greedy, with token healing for prompts ending in whitespace) and FIM examples.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
from gguf_ref import dequantize, read_gguf  # noqa: E402
from model import Config, Llama  # noqa: E402
from tokenizer import BOS, EOS, FIM_MID, FIM_PRE, FIM_SUF  # noqa: E402

WORK = os.path.join(HERE, "work")

PROMPTS = [
    "def fibonacci(n):",
    "for (int i = 0; i < n; ",
    "import numpy as ",
    "#include <",
    "function debounce(fn, wait) {\n",
    "if __name__ == ",
    "class Stack:\n    def __init__(self):\n",
    "template <typename T>\nT max_of(const std::vector<T>& v) {\n",
]

FIM_EXAMPLES = [
    ("def circle_area(r):\n    return ", "\n\nprint(circle_area(2.0))\n"),
    ("def circle_area(r):\n    return ", "\n\nprint(circle_area(2.0) == 4 * r * r)\n"),
    ("int total = 0;\nfor (int i = 0; i < n; i++) {\n    ", "\n}\nreturn total;\n"),
    ("int best = a[0];\nfor (int i = 0; i < n; i++) {\n    ", "\n}\nreturn best;\n"),
    ("def load(path):\n    with open(path) as f:\n        ", "\n    return data\n"),
    ("def load(path):\n    with open(path) as f:\n        ", "\n    return lines\n"),
]


def load_gguf_model(path):
    g = read_gguf(path)
    a = g.get("general.architecture")
    assert a == "llama"
    cfg = Config(n_vocab=len(g.get("tokenizer.ggml.tokens")), n_embd=g.get("llama.embedding_length"),
                 n_layer=g.get("llama.block_count"), n_head=g.get("llama.attention.head_count"),
                 n_kv=g.get("llama.attention.head_count_kv"), n_ff=g.get("llama.feed_forward_length"),
                 ctx=g.get("llama.context_length"), rope_base=g.get("llama.rope.freq_base"),
                 eps=g.get("llama.attention.layer_norm_rms_epsilon"))
    m = Llama(cfg)
    sd = m.state_dict()
    mapping = {"token_embd.weight": "tok.weight", "output_norm.weight": "norm.weight"}
    sub = {"attn_norm": "attn_norm", "attn_q": "wq", "attn_k": "wk", "attn_v": "wv", "attn_output": "wo",
           "ffn_norm": "ffn_norm", "ffn_gate": "w_gate", "ffn_up": "w_up", "ffn_down": "w_down"}
    for i in range(cfg.n_layer):
        for k, v in sub.items():
            mapping[f"blk.{i}.{k}.weight"] = f"blocks.{i}.{v}.weight"
    for ti in g.tensors:
        arr = dequantize(ti.type_id, ti.data, ti.n_elements).reshape(ti.np_shape)
        sd[mapping[ti.name]] = torch.from_numpy(np.array(arr, dtype=np.float32))
    m.load_state_dict(sd)
    m.eval()
    return m, cfg


@torch.no_grad()
def logits_of(m, toks):
    return m(torch.tensor([toks], dtype=torch.long))[0].float()


def windows(toks, ctx):
    n = ctx - 1
    for i in range(0, len(toks), n):
        yield toks[i:i + n]


def compressed_size(cmd, data: bytes):
    if shutil.which(cmd[0]) is None:
        return None
    return len(subprocess.run(cmd, input=data, stdout=subprocess.PIPE, check=True).stdout)


@torch.no_grad()
def greedy(m, cfg, toks, n, sp, heal_text=None, stop_at_blank=True):
    out = []
    toks = list(toks)
    for j in range(n):
        lg = logits_of(m, toks[-(cfg.ctx):])[-1]
        if j == 0 and heal_text is not None:
            ok = torch.tensor([sp.id_to_piece(i).replace("\u2581", " ").startswith(heal_text) and
                               not sp.is_control(i) for i in range(cfg.n_vocab)])
            lg = lg.masked_fill(~ok, float("-inf"))
        t = int(torch.argmax(lg))
        if t == EOS:
            break
        toks.append(t)
        out.append(t)
        if stop_at_blank and "\n\n" in sp.decode(out):
            break
    return out


def encode_healed(sp, text):
    """token healing: drop the prompt's last token when the prompt ends in whitespace or punctuation that
    usually starts a longer piece; the first generated token must then start with the dropped text."""
    toks = sp.encode(text)
    if toks and text[-1:] in " \t":
        last = sp.id_to_piece(toks[-1]).replace("\u2581", " ")
        if not sp.is_byte(toks[-1]):
            return toks[:-1], last
    return toks, None


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--draft", default=os.path.join(ROOT, "models", "spark-draft.gguf"))
    ap.add_argument("--target", default=os.path.join(ROOT, "models", "spark-target.gguf"))
    ap.add_argument("--tok", default=os.path.join(WORK, "tok", "spm.model"))
    ap.add_argument("--valid", default=os.path.join(WORK, "corpus", "valid.jsonl"))
    ap.add_argument("--bytes-per-lang", type=int, default=100_000)
    ap.add_argument("--n-prompts", type=int, default=24)
    ap.add_argument("--prompt-tokens", type=int, default=160)
    ap.add_argument("--gen", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(WORK, "eval", "results.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    sp = spm.SentencePieceProcessor(model_file=args.tok)
    models = {}
    for name, path in (("draft", args.draft), ("target", args.target)):
        models[name] = load_gguf_model(path)
        print(f"{name}: {path} ({os.path.getsize(path):,d} bytes), {models[name][0].n_params():,d} parameters")
    res = {"models": {k: {"path": os.path.relpath(p, ROOT), "params": models[k][0].n_params(),
                          "config": models[k][1].to_dict()}
                      for k, p in (("draft", args.draft), ("target", args.target))}}

    # ---- held-out files per language
    by_lang = {}
    with open(args.valid, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            lst = by_lang.setdefault(d["lang"], [])
            if sum(len(x.encode("utf-8")) for x in lst) < args.bytes_per_lang and \
                    len(d["text"].encode("utf-8")) <= args.bytes_per_lang:
                lst.append(d["text"])

    # ---- bits per byte + teacher-forced agreement
    t0 = time.time()
    bpb = {}
    agree_n, agree_tot = 0, 0
    for lang, texts in sorted(by_lang.items()):
        nbytes = sum(len(t.encode("utf-8")) for t in texts)
        cat = "".join(texts).encode("utf-8")
        row = {"files": len(texts), "bytes": nbytes,
               "gzip -9": compressed_size(["gzip", "-9", "-c"], cat),
               "xz -9e": compressed_size(["xz", "-9e", "-c"], cat)}
        for k in ("gzip -9", "xz -9e"):
            if row[k] is not None:
                row[k] = round(8 * row[k] / nbytes, 4)
        ntok = 0
        bits = {"draft": 0.0, "target": 0.0}
        for t in texts:
            toks = sp.encode(t)
            ntok += len(toks)
            for w in windows(toks, min(models["draft"][1].ctx, models["target"][1].ctx)):
                inp = [BOS] + w[:-1]
                tgt = torch.tensor(w)
                am = {}
                for name, (m, cfg) in models.items():
                    lg = logits_of(m, inp)
                    lp = torch.log_softmax(lg, -1)
                    bits[name] += float(-lp[torch.arange(len(w)), tgt].sum()) / math.log(2)
                    am[name] = lg.argmax(-1)
                agree_n += int((am["draft"] == am["target"]).sum())
                agree_tot += len(w)
        row["tokens"] = ntok
        row["bytes_per_token"] = round(nbytes / ntok, 3)
        for name in bits:
            row[name] = round(bits[name] / nbytes, 4)
        bpb[lang] = row
        print(f"{lang:11s} {nbytes:>8,d} B {ntok:>7,d} tok  draft {row['draft']:.3f}  target {row['target']:.3f}  "
              f"gzip -9 {row['gzip -9']}  xz -9e {row['xz -9e']}  bits/byte  ({time.time() - t0:.0f} s)")
    tb = sum(r["bytes"] for r in bpb.values())
    res["bits_per_byte"] = bpb
    res["bits_per_byte_all"] = {k: round(sum(r[k] * r["bytes"] for r in bpb.values()) / tb, 4)
                                for k in ("draft", "target", "gzip -9", "xz -9e")}
    print("all languages:", res["bits_per_byte_all"])
    alpha = agree_n / agree_tot
    res["agreement_teacher_forced_heldout"] = round(alpha, 4)
    print(f"greedy top-1 agreement draft/target on held-out text (teacher-forced): {alpha:.4f} over {agree_tot} "
          f"positions")

    # ---- speculative decoding simulation on the target's own greedy continuations
    rng = np.random.default_rng(7)
    all_texts = [t for lang in sorted(by_lang) for t in by_lang[lang]]
    mt, ct = models["target"]
    md, cd = models["draft"]
    matches = []
    for k in range(args.n_prompts):
        t = all_texts[int(rng.integers(0, len(all_texts)))]
        toks = sp.encode(t)
        if len(toks) < args.prompt_tokens + 8:
            toks = toks + [EOS]
        st = int(rng.integers(0, max(1, len(toks) - args.prompt_tokens)))
        prompt = [BOS] + toks[st:st + args.prompt_tokens]
        seq = list(prompt)
        for _ in range(args.gen):
            seq.append(int(logits_of(mt, seq[-ct.ctx:])[-1].argmax()))
        dl = logits_of(md, seq[-cd.ctx:]).argmax(-1)
        off = len(seq) - min(len(seq), cd.ctx)
        # draft's greedy prediction for position p (p >= len(prompt)) is dl[p - 1 - off]
        matches.append([int(dl[p - 1 - off]) == seq[p] for p in range(len(prompt), len(seq))])
    flat = [x for m in matches for x in m]
    res["agreement_on_target_greedy"] = round(sum(flat) / len(flat), 4)
    spec = {}
    for gamma in range(2, 9):
        passes, produced = 0, 0
        for m in matches:
            p = 0
            while p < len(m):
                a = 0
                while a < gamma and p + a < len(m) and m[p + a]:
                    a += 1
                passes += 1
                produced += min(a + 1, len(m) - p)
                p += a + 1
        spec[gamma] = {"tokens_per_target_pass": round(produced / passes, 3),
                       "iid_formula": round((1 - alpha ** (gamma + 1)) / (1 - alpha), 3) if alpha < 1 else gamma + 1.0}
    res["speculative"] = spec
    print(f"agreement along the target's greedy continuations: {res['agreement_on_target_greedy']:.4f} "
          f"({len(flat)} positions, {args.n_prompts} prompts)")
    for g, v in spec.items():
        print(f"  gamma {g}: {v['tokens_per_target_pass']:.2f} tokens per target pass "
              f"(iid estimate from teacher-forced agreement {v['iid_formula']:.2f})")

    # ---- samples
    samples = []
    for p in PROMPTS:
        toks, heal = encode_healed(sp, p)
        row = {"prompt": p, "healed": heal is not None}
        for name, (m, cfg) in models.items():
            out = greedy(m, cfg, [BOS] + toks, 40, sp, heal)
            txt = sp.decode(out)
            if heal is not None:   # the healed token re-typed the dropped text; show what follows the prompt
                txt = txt[len(heal):] if txt.startswith(heal) else txt
            row[name] = txt
        samples.append(row)
        print(f"--- {p!r} -> target {row['target']!r} | draft {row['draft']!r}")
    res["samples"] = samples
    fims = []
    for pre, suf in FIM_EXAMPLES:
        ptoks, heal = encode_healed(sp, pre)
        toks = [BOS, FIM_PRE] + ptoks + [FIM_SUF] + sp.encode(suf) + [FIM_MID]
        row = {"prefix": pre, "suffix": suf}
        for name, (m, cfg) in models.items():
            out = greedy(m, cfg, toks, 32, sp, heal, stop_at_blank=False)
            txt = sp.decode(out)
            if heal is not None and txt.startswith(heal):
                txt = txt[len(heal):]
            row[name] = txt
        fims.append(row)
        print(f"--- FIM {pre!r} ... {suf!r} -> target {row['target']!r} | draft {row['draft']!r}")
    res["fim"] = fims
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1)
    print(f"wrote {args.out} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
