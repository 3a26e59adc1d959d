#!/usr/bin/python3
"""Train a llama-architecture code model (draft or target) on the corpus, with FIM.

Time-budgeted: the learning-rate schedule and the sequence-length schedule follow elapsed wall time as a
fraction of --minutes, so a run ends on time whatever the machine's load.  Checkpoints every --ckpt-every
minutes (atomic), --resume continues from one (elapsed time, optimiser and step are restored).
Progress (loss, tokens/s, ETA) goes to --log.

Distillation (--teacher CKPT): the loss is  alpha * KL(teacher || student) + (1 - alpha) * CE; the teacher
checkpoint is reloaded whenever its file changes, so a draft can distil from a target that is still training.

Samples (see sample()): a random window of a file (files chosen in proportion to their size; the window
starts at a line start), tokenised on the fly, [BOS] + tokens, continued with [EOS, BOS] + another file when a
file ends.  With probability --fim the window is cut at two random character positions into prefix / middle /
suffix and laid out as PSM: [BOS, <fim_prefix>] prefix [<fim_suffix>] suffix [<fim_middle>] middle [EOS].
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from model import PRESETS, Config, Llama  # noqa: E402
from tokenizer import BOS, EOS, FIM_MID, FIM_PRE, FIM_SUF  # noqa: E402

WORK = os.path.join(HERE, "work")
IGNORE = -100


class Data:
    def __init__(self, path: str, sp):
        self.texts = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                self.texts.append(json.loads(line)["text"])
        self.cum = np.cumsum([len(t) for t in self.texts])
        self.sp = sp

    def window(self, rng, nchars):
        pos = int(rng.integers(0, int(self.cum[-1])))
        di = int(np.searchsorted(self.cum, pos, side="right"))
        t = self.texts[di]
        off = pos - (int(self.cum[di - 1]) if di else 0)
        off = t.rfind("\n", 0, off) + 1                  # start at a line start
        end = off + nchars
        return t[off:end], end >= len(t)

    def fill(self, rng, toks, n):
        """append [EOS?] [BOS] + tokens of new windows until len(toks) >= n"""
        while len(toks) < n:
            w, ended = self.window(rng, 4 * (n - len(toks)) + 16)
            toks += [BOS] + self.sp.encode(w)
            if ended:
                toks.append(EOS)
        return toks[:n]

    def sample(self, rng, seq, fim_rate):
        n = seq + 1
        if rng.random() >= fim_rate:
            return self.fill(rng, [], n)
        w, _ = self.window(rng, int(seq * 2.6))
        if len(w) < 4:
            return self.fill(rng, [], n)
        a = int(rng.integers(0, len(w)))
        if rng.random() < 0.5:
            b = min(len(w), a + int(rng.integers(0, 120)))     # short middle: a fragment of a line or two
        else:
            b = int(rng.integers(a, len(w) + 1))
        pre, mid, suf = self.sp.encode(w[:a]), self.sp.encode(w[a:b]), self.sp.encode(w[b:])
        budget = n - 6
        if len(mid) > budget:
            mid = mid[:budget]
            tail = []
        else:
            tail = [EOS]
        room = budget - len(mid)
        # keep the end of the prefix and the start of the suffix
        ns = min(len(suf), room // 2)
        np_ = min(len(pre), room - ns)
        ns = min(len(suf), room - np_)
        pre = pre[len(pre) - np_:]
        suf = suf[:ns]
        toks = [BOS, FIM_PRE] + pre + [FIM_SUF] + suf + [FIM_MID] + mid + tail
        return self.fill(rng, toks, n)

    def batch(self, rng, bs, seq, fim_rate):
        arr = np.array([self.sample(rng, seq, fim_rate) for _ in range(bs)], dtype=np.int64)
        t = torch.from_numpy(arr)
        return t[:, :-1], t[:, 1:]


def lr_at(frac, step, base, warmup, min_ratio=0.1):
    w = min(1.0, (step + 1) / warmup)
    c = min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
    return base * w * c


def save(path, model, opt, meta):
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "cfg": model.cfg.to_dict(), **meta}, tmp)
    os.replace(tmp, path)


def load_teacher(path):
    ck = torch.load(path, map_location="cpu")
    m = Llama(Config(**ck["cfg"]))
    m.load_state_dict(ck["model"])
    m.eval()
    return m


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--preset", default="target", choices=sorted(PRESETS))
    ap.add_argument("--minutes", type=float, required=True, help="wall-time budget of this run")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-tokens", type=int, default=2048)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--long-seq", type=int, default=512)
    ap.add_argument("--long-frac", type=float, default=0.85, help="switch to --long-seq after this time fraction")
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--fim", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ckpt-every", type=float, default=5.0, help="minutes")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", help="start from this checkpoint's weights (fresh optimiser and schedule)")
    ap.add_argument("--teacher", help="distil from this checkpoint (reloaded when it changes)")
    ap.add_argument("--alpha", type=float, default=0.8)
    ap.add_argument("--bf16", type=int, default=0, help="bf16 autocast (only worth it with AVX-512 BF16)")
    ap.add_argument("--work", default=WORK)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    ck_dir = os.path.join(args.work, "ckpt")
    os.makedirs(ck_dir, exist_ok=True)
    os.makedirs(os.path.join(args.work, "logs"), exist_ok=True)
    ck_path = os.path.join(ck_dir, args.name + ".pt")
    log = open(os.path.join(args.work, "logs", args.name + ".log"), "a", buffering=1)

    def say(msg):
        log.write(msg + "\n")

    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.work, "tok", "spm.model"))
    cfg = PRESETS[args.preset]
    cfg = Config(**{**cfg.to_dict(), "n_vocab": sp.get_piece_size(), "ctx": max(args.seq, args.long_seq)})
    torch.manual_seed(args.seed)
    model = Llama(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=args.wd)
    step, elapsed, tokens = 0, 0.0, 0
    if args.resume and os.path.exists(ck_path):
        ck = torch.load(ck_path, map_location="cpu")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, elapsed, tokens = ck["step"], ck["elapsed"], ck["tokens"]
        say(f"resumed {ck_path} at step {step}, {elapsed / 60:.1f} min, {tokens:,d} tokens")
    elif args.init:
        ck = torch.load(args.init, map_location="cpu")
        model.load_state_dict(ck["model"])
        say(f"initialised from {args.init}")

    say(f"== {args.name}: preset {args.preset} {cfg} params {model.n_params():,d} threads {args.threads} "
        f"budget {args.minutes} min; args {vars(args)}")
    data = Data(os.path.join(args.work, "corpus", "train.jsonl"), sp)
    vdata = Data(os.path.join(args.work, "corpus", "valid.jsonl"), sp)
    vrng = np.random.default_rng(999)
    vx, vy = vdata.batch(vrng, 32, 256, args.fim)
    rng = np.random.default_rng(args.seed * 100003 + step)

    teacher, t_mtime = None, None

    def maybe_reload_teacher():
        nonlocal teacher, t_mtime
        if not args.teacher or not os.path.exists(args.teacher):
            return
        mt = os.path.getmtime(args.teacher)
        if mt != t_mtime:
            try:
                teacher = load_teacher(args.teacher)
                t_mtime = mt
                say(f"teacher (re)loaded from {args.teacher}")
            except Exception as e:   # e.g. caught mid-write; keep the old one
                say(f"teacher reload failed: {e}")

    def val_loss():
        model.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(args.bf16)):
            lg = model(vx)
        model.train()
        return F.cross_entropy(lg.float().reshape(-1, lg.shape[-1]), vy.reshape(-1), ignore_index=IGNORE).item()

    budget = args.minutes * 60
    t0 = time.time() - elapsed
    last_ck = time.time()
    ema, t_log, tok_log = None, time.time(), 0
    maybe_reload_teacher()
    model.train()
    while True:
        elapsed = time.time() - t0
        frac = elapsed / budget
        if frac >= 1.0:
            break
        seq = args.seq if frac < args.long_frac else args.long_seq
        bs = max(1, args.batch_tokens // seq)
        lr = lr_at(frac, step, args.lr, args.warmup, args.min_lr_ratio)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = data.batch(rng, bs, seq, args.fim)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(args.bf16)):
            logits = model(x)
        logits = logits.float().reshape(-1, cfg.n_vocab)
        ce = F.cross_entropy(logits, y.reshape(-1), ignore_index=IGNORE)
        loss = ce
        if teacher is not None:
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(args.bf16)):
                tl = teacher(x)
            tp = torch.log_softmax(tl.float().reshape(-1, cfg.n_vocab), -1)
            sl = torch.log_softmax(logits, -1)
            kl = (tp.exp() * (tp - sl)).sum(-1).mean()
            loss = args.alpha * kl + (1 - args.alpha) * ce
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += x.numel()
        tok_log += x.numel()
        ema = ce.item() if ema is None else 0.98 * ema + 0.02 * ce.item()
        if step % 50 == 0:
            now = time.time()
            tps = tok_log / (now - t_log)
            t_log, tok_log = now, 0
            say(f"step {step:6d}  loss {ema:.4f}  ({ema / math.log(2):.3f} bits/token)  lr {lr:.2e}  seq {seq}  "
                f"{tps:,.0f} tok/s  tokens {tokens / 1e6:.2f}M  elapsed {elapsed / 60:.1f} min  "
                f"ETA {(budget - elapsed) / 60:.1f} min")
        if time.time() - last_ck > args.ckpt_every * 60:
            save(ck_path, model, opt, {"step": step, "elapsed": time.time() - t0, "tokens": tokens})
            last_ck = time.time()
            say(f"checkpoint {ck_path} at step {step}; held-out loss {val_loss():.4f}")
            maybe_reload_teacher()
    save(ck_path, model, opt, {"step": step, "elapsed": time.time() - t0, "tokens": tokens})
    say(f"done: step {step}, {tokens:,d} tokens, {(time.time() - t0) / 60:.1f} min; held-out loss {val_loss():.4f}")


if __name__ == "__main__":
    main()
