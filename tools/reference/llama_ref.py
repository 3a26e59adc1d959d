#!/usr/bin/python3
"""Independent float64 reference forward pass for GGUF `llama` / `qwen2` models.

Written from the public llama.cpp / ggml conventions (see README.md), not from
this project's C++ code.  Weights are dequantised with gguf_ref.dequantize
(float32, exactly as ggml does) and then everything is computed in float64.

Notation: T = number of tokens, E = n_embd, H = n_head, Hkv = n_head_kv,
D = head dim, F = n_ff, V = n_vocab.

Weight convention: a GGUF tensor with dims [ne0, ne1] is ne1 rows of ne0
contiguous values; as numpy it is W with shape (ne1, ne0) and the layer
computes y[o] = sum_i W[o, i] x[i], i.e. y = x @ W.T for row vectors x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from gguf_ref import GGUFFile, read_gguf

ROPE_NORMAL = "normal"   # ggml mode 0: rotate adjacent pairs (x[2j], x[2j+1])
ROPE_NEOX = "neox"       # ggml NeoX mode: rotate (x[j], x[j + n_rot/2])

ARCH_ROPE_MODE = {"llama": ROPE_NORMAL, "qwen2": ROPE_NEOX}


@dataclass
class HParams:
    arch: str
    n_embd: int
    n_layer: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_rot: int
    rope_base: float
    rms_eps: float
    n_ctx_train: int
    n_vocab: int
    rope_mode: str

    @staticmethod
    def from_gguf(g: GGUFFile) -> "HParams":
        arch = g.get("general.architecture")
        if arch not in ARCH_ROPE_MODE:
            raise ValueError(f"unsupported general.architecture {arch!r} (need llama or qwen2)")

        def key(name: str, default=None, required: bool = True):
            k = f"{arch}.{name}"
            if k in g.metadata:
                return g.metadata[k]
            if default is None and required:
                raise ValueError(f"missing required metadata key {k}")
            return default

        n_embd = int(key("embedding_length"))
        n_head = int(key("attention.head_count"))
        n_head_kv = int(key("attention.head_count_kv", n_head))
        if n_embd % n_head != 0 and f"{arch}.attention.key_length" not in g.metadata:
            raise ValueError("embedding_length not divisible by head_count and no key_length")
        head_dim = int(key("attention.key_length", n_embd // n_head))
        n_rot = int(key("rope.dimension_count", head_dim))
        if n_head % n_head_kv != 0:
            raise ValueError(f"head_count {n_head} not a multiple of head_count_kv {n_head_kv}")
        if n_rot % 2 != 0 or n_rot > head_dim:
            raise ValueError(f"bad rope.dimension_count {n_rot} for head dim {head_dim}")
        vdim = int(key("attention.value_length", head_dim))
        if vdim != head_dim:
            raise ValueError("attention.value_length != key_length is not supported")
        emb = g.tensor("token_embd.weight")
        return HParams(
            arch=arch,
            n_embd=n_embd,
            n_layer=int(key("block_count")),
            n_ff=int(key("feed_forward_length")),
            n_head=n_head,
            n_head_kv=n_head_kv,
            head_dim=head_dim,
            n_rot=n_rot,
            rope_base=float(key("rope.freq_base", 10000.0)),
            rms_eps=float(key("attention.layer_norm_rms_epsilon")),
            n_ctx_train=int(key("context_length", 0, required=False)),
            n_vocab=int(emb.dims[1]),
            rope_mode=ARCH_ROPE_MODE[arch],
        )


# ----------------------------------------------------------------------------
# Building blocks (all float64)
# ----------------------------------------------------------------------------

def rms_norm(x: np.ndarray, eps: float) -> np.ndarray:
    """x: (T, E) -> x / sqrt(mean(x^2) + eps), row-wise."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def rope(x: np.ndarray, positions: Sequence[int], n_rot: int, base: float, mode: str) -> np.ndarray:
    """Rotary embedding on the first n_rot dims of every head.

    x: (T, n_heads, D); positions: (T,) absolute positions.
    theta_j = p * base^(-2j/n_rot), j = 0 .. n_rot/2 - 1
      normal: pairs (x[2j], x[2j+1])
      neox:   pairs (x[j],  x[j + n_rot/2])
    (a, b) -> (a cos - b sin, a sin + b cos); dims >= n_rot pass through.
    """
    x = np.array(x, dtype=np.float64, copy=True)
    half = n_rot // 2
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 1)           # (T, 1)
    inv_freq = base ** (-2.0 * np.arange(half, dtype=np.float64) / n_rot)  # (half,)
    theta = pos * inv_freq                                                 # (T, half)
    cos = np.cos(theta)[:, None, :]                                        # (T, 1, half)
    sin = np.sin(theta)[:, None, :]
    if mode == ROPE_NORMAL:
        ia = np.arange(half) * 2
        ib = ia + 1
    elif mode == ROPE_NEOX:
        ia = np.arange(half)
        ib = ia + half
    else:
        raise ValueError(f"unknown rope mode {mode!r}")
    a = x[:, :, ia].copy()
    b = x[:, :, ib].copy()
    x[:, :, ia] = a * cos - b * sin
    x[:, :, ib] = a * sin + b * cos
    return x


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, q_pos: np.ndarray, k_pos: np.ndarray) -> np.ndarray:
    """Causal multi-head attention with grouped K/V heads.

    q: (T, H, D); k, v: (S, Hkv, D); q_pos: (T,), k_pos: (S,).
    Query head h uses kv head h // (H / Hkv).  Query at position p attends to
    keys with position <= p.  Returns (T, H*D).
    """
    T, H, D = q.shape
    S, Hkv, _ = k.shape
    group = H // Hkv
    kv_of_head = np.arange(H) // group                       # (H,)
    kh = k[:, kv_of_head, :]                                 # (S, H, D)
    vh = v[:, kv_of_head, :]
    scores = np.einsum("thd,shd->hts", q, kh) / math.sqrt(D)  # (H, T, S)
    mask = k_pos[None, :] > q_pos[:, None]                   # (T, S): future keys
    scores = np.where(mask[None, :, :], -np.inf, scores)
    scores -= scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)
    out = np.einsum("hts,shd->thd", p, vh)                   # (T, H, D)
    return out.reshape(T, H * D)


# ----------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------

class LlamaRef:
    """Reference model.  Weights are dequantised once (float32 -> float64)."""

    def __init__(self, g: GGUFFile):
        self.g = g
        self.hp = hp = HParams.from_gguf(g)
        E, F = hp.n_embd, hp.n_ff
        QD, KD = hp.n_head * hp.head_dim, hp.n_head_kv * hp.head_dim

        def w(name: str, dims: Sequence[int], required: bool = True) -> Optional[np.ndarray]:
            if name not in g.tensor_by_name:
                if required:
                    raise ValueError(f"missing tensor {name}")
                return None
            ti = g.tensor(name)
            if tuple(ti.dims) != tuple(dims):
                raise ValueError(f"tensor {name}: dims {list(ti.dims)}, expected {list(dims)}")
            return g.tensor_f32(name).astype(np.float64)

        V = hp.n_vocab
        self.tok_embd = w("token_embd.weight", [E, V])          # (V, E)
        self.out_norm = w("output_norm.weight", [E])             # (E,)
        out = w("output.weight", [E, V], required=False)         # (V, E)
        self.tied = out is None
        self.output = self.tok_embd if out is None else out

        self.layers: List[Dict[str, Optional[np.ndarray]]] = []
        for i in range(hp.n_layer):
            p = f"blk.{i}."
            self.layers.append({
                "attn_norm": w(p + "attn_norm.weight", [E]),          # (E,)
                "wq": w(p + "attn_q.weight", [E, QD]),                 # (H*D, E)
                "wk": w(p + "attn_k.weight", [E, KD]),                 # (Hkv*D, E)
                "wv": w(p + "attn_v.weight", [E, KD]),                 # (Hkv*D, E)
                "bq": w(p + "attn_q.bias", [QD], required=False),      # (H*D,)
                "bk": w(p + "attn_k.bias", [KD], required=False),
                "bv": w(p + "attn_v.bias", [KD], required=False),
                "wo": w(p + "attn_output.weight", [QD, E]),            # (E, H*D)
                "ffn_norm": w(p + "ffn_norm.weight", [E]),
                "w_gate": w(p + "ffn_gate.weight", [E, F]),            # (F, E)
                "w_up": w(p + "ffn_up.weight", [E, F]),                # (F, E)
                "w_down": w(p + "ffn_down.weight", [F, E]),            # (E, F)
            })

    @staticmethod
    def from_file(path: str) -> "LlamaRef":
        return LlamaRef(read_gguf(path))

    def forward(self, tokens: Sequence[int]) -> np.ndarray:
        """Logits for every position: (T, V) float64."""
        hp = self.hp
        tokens = np.asarray(tokens, dtype=np.int64)
        T = tokens.shape[0]
        if T == 0:
            raise ValueError("empty token list")
        if tokens.min() < 0 or tokens.max() >= hp.n_vocab:
            raise ValueError(f"token id out of range [0, {hp.n_vocab})")
        if hp.n_ctx_train and T > hp.n_ctx_train:
            raise ValueError(f"{T} tokens > context_length {hp.n_ctx_train}")
        pos = np.arange(T)
        H, Hkv, D = hp.n_head, hp.n_head_kv, hp.head_dim

        x = self.tok_embd[tokens]                                    # (T, E)
        for L in self.layers:
            # --- attention block
            n = rms_norm(x, hp.rms_eps) * L["attn_norm"]            # (T, E)
            q = n @ L["wq"].T                                        # (T, H*D)
            k = n @ L["wk"].T                                        # (T, Hkv*D)
            v = n @ L["wv"].T
            if L["bq"] is not None:
                q = q + L["bq"]
            if L["bk"] is not None:
                k = k + L["bk"]
            if L["bv"] is not None:
                v = v + L["bv"]
            q = rope(q.reshape(T, H, D), pos, hp.n_rot, hp.rope_base, hp.rope_mode)
            k = rope(k.reshape(T, Hkv, D), pos, hp.n_rot, hp.rope_base, hp.rope_mode)
            v = v.reshape(T, Hkv, D)
            a = attention(q, k, v, pos, pos)                         # (T, H*D)
            h = x + a @ L["wo"].T                                    # (T, E)
            # --- feed-forward block (SwiGLU)
            n = rms_norm(h, hp.rms_eps) * L["ffn_norm"]
            f = silu(n @ L["w_gate"].T) * (n @ L["w_up"].T)          # (T, F)
            x = h + f @ L["w_down"].T                                # (T, E)

        x = rms_norm(x, hp.rms_eps) * self.out_norm                  # (T, E)
        return x @ self.output.T                                     # (T, V)


def forward_file(path: str, tokens: Sequence[int]) -> np.ndarray:
    return LlamaRef.from_file(path).forward(tokens)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="print reference logits for a token list")
    ap.add_argument("model")
    ap.add_argument("tokens", help="comma-separated token ids")
    args = ap.parse_args()
    toks = [int(t) for t in args.tokens.split(",") if t]
    m = LlamaRef.from_file(args.model)
    lg = m.forward(toks)
    np.set_printoptions(precision=6, suppress=True, linewidth=120)
    print(f"arch={m.hp.arch} rope={m.hp.rope_mode} tied={m.tied} logits shape={lg.shape}")
    for t, row in zip(toks, lg):
        print(t, "argmax", int(np.argmax(row)), row[:8])
