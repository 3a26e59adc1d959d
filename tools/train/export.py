#!/usr/bin/python3
"""Export a training checkpoint to GGUF v3 (arch llama) plus golden logits.

  export.py --ckpt work/ckpt/target.pt --name spark-target --out models/spark-target.gguf

Writes models/<name>.gguf and models/<name>.golden.gguf.  Matrices F16 (or --q8 for Q8_0), norms F32,
output tied to token_embd (no output.weight).  The golden logits are computed by the PyTorch model in float64
from the exported (F16/Q8_0-rounded) weights, and cross-checked against the independent numpy reference in
tools/reference/llama_ref.py (which reads the GGUF we just wrote).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import sentencepiece as spm
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
from gguf_ref import VT, GGMLType, GGUFWriter, dequantize, read_gguf  # noqa: E402
from model import Config, Llama, gguf_tensors  # noqa: E402
from tokenizer import BOS, EOS, FIM_MID, FIM_PRE, FIM_SUF  # noqa: E402

WORK = os.path.join(HERE, "work")

GOLDEN_CASES = [
    ("python", None, "def fibonacci(n):\n    if n < 2:\n        return n\n"),
    ("cpp", None, "#include <vector>\nfor (int i = 0; i < n; "),
    ("js", None, "const add = (a, b) => "),
    ("fim", ("def area(r):\n    return ", "\n\nprint(area(2.0))\n"), None),
]


def quantize_q8_0(a: np.ndarray) -> bytes:
    """ggml's quantize_row_q8_0_ref: blocks of 32, d = amax/127 (stored f16), q = round(x/d)."""
    x = a.astype(np.float32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    d = amax / 127.0
    idd = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0).astype(np.float32)
    q = np.round(x * idd[:, None]).astype(np.int8)
    out = np.zeros(x.shape[0], dtype=[("d", "<f2"), ("q", "i1", (32,))])
    out["d"] = d.astype(np.float16)
    out["q"] = q
    return out.tobytes()


def token_types(sp):
    tt = []
    for i in range(sp.get_piece_size()):
        if sp.is_unknown(i):
            tt.append(2)
        elif sp.is_control(i):
            tt.append(3)
        elif sp.is_byte(i):
            tt.append(6)
        else:
            tt.append(1)
    return tt


def case_tokens(sp, case):
    name, fim, text = case
    if fim is None:
        return [BOS] + sp.encode(text)
    pre, suf = fim
    return [BOS, FIM_PRE] + sp.encode(pre) + [FIM_SUF] + sp.encode(suf) + [FIM_MID]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--name", required=True, help="general.name and file stem")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "models"))
    ap.add_argument("--tok", default=os.path.join(WORK, "tok", "spm.model"))
    ap.add_argument("--q8", action="store_true", help="Q8_0 matrices instead of F16")
    ap.add_argument("--no-golden", action="store_true")
    args = ap.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, args.name + ".gguf")

    ck = torch.load(args.ckpt, map_location="cpu")
    cfg = Config(**ck["cfg"])
    model = Llama(cfg)
    model.load_state_dict(ck["model"])
    sp = spm.SentencePieceProcessor(model_file=args.tok)
    assert sp.get_piece_size() == cfg.n_vocab

    w = GGUFWriter()
    w.add_string("general.architecture", "llama")
    w.add_string("general.name", args.name)
    w.add_u32("general.file_type", 7 if args.q8 else 1)     # MOSTLY_Q8_0 / MOSTLY_F16
    w.add_u32("general.quantization_version", 2)
    w.add_u32("llama.context_length", cfg.ctx)
    w.add_u32("llama.embedding_length", cfg.n_embd)
    w.add_u32("llama.block_count", cfg.n_layer)
    w.add_u32("llama.feed_forward_length", cfg.n_ff)
    w.add_u32("llama.attention.head_count", cfg.n_head)
    w.add_u32("llama.attention.head_count_kv", cfg.n_kv)
    w.add_u32("llama.rope.dimension_count", cfg.head_dim)
    w.add_f32("llama.rope.freq_base", cfg.rope_base)
    w.add_f32("llama.attention.layer_norm_rms_epsilon", cfg.eps)
    w.add_u32("llama.vocab_size", cfg.n_vocab)
    w.add_string("tokenizer.ggml.model", "llama")
    w.add_array_string("tokenizer.ggml.tokens", [sp.id_to_piece(i) for i in range(cfg.n_vocab)])
    w.add("tokenizer.ggml.scores", [float(sp.get_score(i)) for i in range(cfg.n_vocab)], VT.ARRAY, VT.FLOAT32)
    w.add("tokenizer.ggml.token_type", token_types(sp), VT.ARRAY, VT.INT32)
    w.add_u32("tokenizer.ggml.bos_token_id", BOS)
    w.add_u32("tokenizer.ggml.eos_token_id", EOS)
    w.add_u32("tokenizer.ggml.unknown_token_id", 0)
    w.add("tokenizer.ggml.add_bos_token", True, VT.BOOL)
    w.add("tokenizer.ggml.add_eos_token", False, VT.BOOL)
    w.add("tokenizer.ggml.add_space_prefix", False, VT.BOOL)
    w.add_u32("tokenizer.ggml.fim_pre_token_id", FIM_PRE)
    w.add_u32("tokenizer.ggml.fim_suf_token_id", FIM_SUF)
    w.add_u32("tokenizer.ggml.fim_mid_token_id", FIM_MID)

    rounded = {}
    for name, (a, is_matrix) in gguf_tensors(model).items():
        dims = list(reversed(a.shape))
        if is_matrix and args.q8 and a.shape[-1] % 32 == 0:
            raw = quantize_q8_0(a)
            w.add_tensor_raw(name, GGMLType.Q8_0, dims, raw)
            rounded[name] = dequantize(GGMLType.Q8_0, raw, a.size).reshape(a.shape)
        elif is_matrix:
            h = a.astype(np.float16)
            w.add_tensor_raw(name, GGMLType.F16, dims, h.tobytes())
            rounded[name] = h.astype(np.float32)
        else:
            w.add_tensor_f32(name, a.astype(np.float32), dims=dims)
            rounded[name] = a.astype(np.float32)
    w.write(out)
    print(f"wrote {out} ({os.path.getsize(out):,d} bytes, {model.n_params():,d} parameters)")
    if args.no_golden:
        return

    # golden logits: the PyTorch model in float64 with the exported (rounded) weights
    # use the hyper-parameters exactly as stored in the GGUF (f32 eps / freq_base)
    cfg64 = Config(**{**cfg.to_dict(), "eps": float(np.float32(cfg.eps)), "rope_base": float(np.float32(cfg.rope_base))})
    m64 = Llama(cfg64).double()
    sd = m64.state_dict()
    mapping = {"token_embd.weight": "tok.weight", "output_norm.weight": "norm.weight"}
    sub = {"attn_norm": "attn_norm", "attn_q": "wq", "attn_k": "wk", "attn_v": "wv", "attn_output": "wo",
           "ffn_norm": "ffn_norm", "ffn_gate": "w_gate", "ffn_up": "w_up", "ffn_down": "w_down"}
    for i in range(cfg.n_layer):
        for g, t in sub.items():
            mapping[f"blk.{i}.{g}.weight"] = f"blocks.{i}.{t}.weight"
    for g, t in mapping.items():
        sd[t] = torch.from_numpy(rounded[g].astype(np.float64))
    m64.load_state_dict(sd)
    m64.eval()

    from llama_ref import LlamaRef  # independent numpy reference
    ref = LlamaRef.from_file(out)
    gw = GGUFWriter()
    gw.add_string("golden.kind", "logits")
    gw.add_string("golden.model", os.path.basename(out))
    gw.add_array_string("golden.cases", [c[0] for c in GOLDEN_CASES])
    cases = [(c[0], case_tokens(sp, c)) for c in GOLDEN_CASES]
    for name, toks in cases:
        gw.add_array_i32(f"golden.case.{name}.tokens", toks)
    for name, toks in cases:
        with torch.no_grad():
            lg = m64(torch.tensor([toks]))[0].numpy()
        lr = ref.forward(toks)
        diff = float(np.abs(lg - lr).max())
        assert diff < 1e-6 * max(1.0, float(np.abs(lr).max())), f"{name}: torch vs numpy reference differ by {diff}"
        gw.add_tensor_f32(f"logits.{name}", lg.astype(np.float32), dims=[cfg.n_vocab, len(toks)])
        nxt = int(np.argmax(lg[-1]))
        print(f"  golden {name}: {len(toks)} tokens, max|torch-ref| {diff:.2e}, argmax of last = {nxt} "
              f"{sp.id_to_piece(nxt)!r}")
    gout = os.path.join(args.out_dir, args.name + ".golden.gguf")
    gw.write(gout)
    print(f"wrote {gout} ({os.path.getsize(gout):,d} bytes)")


if __name__ == "__main__":
    main()
