"""The llama-architecture model used for training, in exactly the conventions that the GGUF consumers use:

* RMSNorm  y = x / sqrt(mean(x^2) + eps) * w
* RoPE in ggml's "normal" convention (arch llama): adjacent pairs (x[2j], x[2j+1]) rotated by
  theta = pos * base^(-2j/head_dim), so the exported q/k weights need no permutation.
* attention scale 1/sqrt(head_dim), causal; GQA: query head h uses KV head h // (n_head / n_kv)
* SwiGLU FFN  down(silu(gate(x)) * up(x))
* output tied to the token embedding (no output.weight in the GGUF).
nn.Linear weights are (out, in) row-major = GGUF dims [in, out].  Exactly what GGUF wants.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    n_vocab: int = 4096
    n_embd: int = 256
    n_layer: int = 6
    n_head: int = 4
    n_kv: int = 2
    n_ff: int = 688
    ctx: int = 512
    rope_base: float = 10000.0
    eps: float = 1e-5

    @property
    def head_dim(self):
        return self.n_embd // self.n_head

    def to_dict(self):
        return asdict(self)


PRESETS = {
    "draft": Config(n_embd=128, n_layer=4, n_head=4, n_kv=2, n_ff=352),
    "target": Config(n_embd=256, n_layer=6, n_head=4, n_kv=2, n_ff=688),
    "tiny": Config(n_embd=64, n_layer=2, n_head=2, n_kv=1, n_ff=160),
}


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        xf = x if x.dtype == torch.float64 else x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.to(xf.dtype)).to(x.dtype)


def rope_tables(cfg: Config, T: int, dtype=torch.float32, offset: int = 0):
    hd = cfg.head_dim
    j = torch.arange(hd // 2, dtype=torch.float64)
    inv = cfg.rope_base ** (-2.0 * j / hd)
    pos = torch.arange(offset, offset + T, dtype=torch.float64)
    ang = pos[:, None] * inv[None, :]                       # (T, hd/2)
    return torch.cos(ang).to(dtype), torch.sin(ang).to(dtype)


def apply_rope(x, cos, sin):
    """x: (B, H, T, hd); rotate adjacent pairs."""
    B, H, T, hd = x.shape
    xp = x.reshape(B, H, T, hd // 2, 2)
    a, b = xp[..., 0], xp[..., 1]
    c, s = cos.to(x.dtype), sin.to(x.dtype)
    return torch.stack((a * c - b * s, a * s + b * c), dim=-1).reshape(B, H, T, hd)


class Block(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.attn_norm = RMSNorm(cfg.n_embd, cfg.eps)
        self.wq = nn.Linear(cfg.n_embd, cfg.n_head * hd, bias=False)
        self.wk = nn.Linear(cfg.n_embd, cfg.n_kv * hd, bias=False)
        self.wv = nn.Linear(cfg.n_embd, cfg.n_kv * hd, bias=False)
        self.wo = nn.Linear(cfg.n_head * hd, cfg.n_embd, bias=False)
        self.ffn_norm = RMSNorm(cfg.n_embd, cfg.eps)
        self.w_gate = nn.Linear(cfg.n_embd, cfg.n_ff, bias=False)
        self.w_up = nn.Linear(cfg.n_embd, cfg.n_ff, bias=False)
        self.w_down = nn.Linear(cfg.n_ff, cfg.n_embd, bias=False)

    def forward(self, x, cos, sin, mask):
        cfg = self.cfg
        B, T, _ = x.shape
        hd = cfg.head_dim
        n = self.attn_norm(x)
        q = self.wq(n).view(B, T, cfg.n_head, hd).transpose(1, 2)
        k = self.wk(n).view(B, T, cfg.n_kv, hd).transpose(1, 2)
        v = self.wv(n).view(B, T, cfg.n_kv, hd).transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        g = cfg.n_head // cfg.n_kv
        if g > 1:
            k = k.repeat_interleave(g, dim=1)
            v = v.repeat_interleave(g, dim=1)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        att = (att if att.dtype == torch.float64 else att.float()).masked_fill(mask, float("-inf"))
        att = torch.softmax(att, dim=-1).to(v.dtype)
        y = (att @ v).transpose(1, 2).reshape(B, T, cfg.n_head * hd)
        h = x + self.wo(y)
        n2 = self.ffn_norm(h)
        return h + self.w_down(F.silu(self.w_gate(n2)) * self.w_up(n2))


class Llama(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.n_vocab, cfg.n_embd)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.norm = RMSNorm(cfg.n_embd, cfg.eps)
        self.apply(self._init)
        for b in self.blocks:   # scaled init of the residual projections
            nn.init.normal_(b.wo.weight, std=0.02 / math.sqrt(2 * cfg.n_layer))
            nn.init.normal_(b.w_down.weight, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def n_params(self):
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx):
        B, T = idx.shape
        dt = torch.float64 if self.tok.weight.dtype == torch.float64 else torch.float32
        cos, sin = rope_tables(self.cfg, T, dtype=dt)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        x = self.tok(idx)
        for b in self.blocks:
            x = b(x, cos, sin, mask)
        x = self.norm(x)
        return x @ self.tok.weight.to(x.dtype).t()


def gguf_tensors(model: Llama):
    """name -> (float32 numpy array in torch layout (out, in), is_matrix)."""
    out = {"token_embd.weight": (model.tok.weight, True), "output_norm.weight": (model.norm.weight, False)}
    for i, b in enumerate(model.blocks):
        p = f"blk.{i}."
        out[p + "attn_norm.weight"] = (b.attn_norm.weight, False)
        out[p + "attn_q.weight"] = (b.wq.weight, True)
        out[p + "attn_k.weight"] = (b.wk.weight, True)
        out[p + "attn_v.weight"] = (b.wv.weight, True)
        out[p + "attn_output.weight"] = (b.wo.weight, True)
        out[p + "ffn_norm.weight"] = (b.ffn_norm.weight, False)
        out[p + "ffn_gate.weight"] = (b.w_gate.weight, True)
        out[p + "ffn_up.weight"] = (b.w_up.weight, True)
        out[p + "ffn_down.weight"] = (b.w_down.weight, True)
    return {k: (v.detach().float().cpu().numpy(), m) for k, (v, m) in out.items()}
