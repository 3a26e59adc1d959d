#!/usr/bin/python3
"""Produce golden GGUF files from the independent numpy reference.

Logits mode:
  make_golden.py --model M.gguf --out G.gguf --case NAME=1,2,3 [--case NAME2=...]
    metadata  golden.kind              string  "logits"
              golden.model             string  basename of M.gguf
              golden.cases             [string] case names, in command-line order
              golden.case.NAME.tokens  [i32]    the token ids
    tensors   logits.NAME              f32, GGUF dims [n_vocab, n_tokens]
              (row t = the logits after token t, computed in float64, stored as f32)

Dequant mode:
  make_golden.py --dequant Q.gguf --out G.gguf
    metadata  golden.kind  "dequant",  golden.model  basename of Q.gguf
    tensors   for every tensor of Q.gguf: f32 tensor, same name and dims, holding
              the dequantised values (float32 arithmetic, as ggml).
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gguf_ref import GGUFWriter, SUPPORTED_DEQUANT_TYPES, GGML_TYPE_NAMES, dequantize, read_gguf  # noqa: E402
from llama_ref import LlamaRef  # noqa: E402

CASE_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")


def parse_case(spec: str):
    if "=" not in spec:
        raise argparse.ArgumentTypeError(f"--case expects NAME=ids, got {spec!r}")
    name, ids = spec.split("=", 1)
    if not CASE_NAME_RE.match(name):
        raise argparse.ArgumentTypeError(f"case name {name!r} must match [A-Za-z0-9_]+")
    try:
        toks = [int(t) for t in ids.replace(" ", "").split(",") if t != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad token list in {spec!r}")
    if not toks:
        raise argparse.ArgumentTypeError(f"case {name!r} has no tokens")
    return name, toks


def make_logits_golden(model_path: str, out_path: str, cases) -> None:
    names = [n for n, _ in cases]
    if len(set(names)) != len(names):
        raise SystemExit("duplicate case names")
    model = LlamaRef.from_file(model_path)
    w = GGUFWriter()
    w.add_string("golden.kind", "logits")
    w.add_string("golden.model", os.path.basename(model_path))
    w.add_array_string("golden.cases", names)
    for name, toks in cases:
        w.add_array_i32(f"golden.case.{name}.tokens", toks)
    for name, toks in cases:
        logits = model.forward(toks)                        # (T, V) float64
        assert logits.shape == (len(toks), model.hp.n_vocab)
        assert np.all(np.isfinite(logits)), f"non-finite logits in case {name}"
        w.add_tensor_f32(f"logits.{name}", logits.astype(np.float32),
                         dims=[model.hp.n_vocab, len(toks)])
        print(f"  case {name}: {len(toks)} tokens, argmax of last = {int(np.argmax(logits[-1]))}")
    w.write(out_path)
    print(f"wrote {out_path} ({os.path.getsize(out_path)} bytes)")


def make_dequant_golden(q_path: str, out_path: str) -> None:
    g = read_gguf(q_path)
    w = GGUFWriter()
    w.add_string("golden.kind", "dequant")
    w.add_string("golden.model", os.path.basename(q_path))
    for ti in g.tensors:
        if ti.type_id not in SUPPORTED_DEQUANT_TYPES:
            raise SystemExit(f"tensor {ti.name}: type {GGML_TYPE_NAMES.get(ti.type_id, ti.type_id)} "
                             f"not supported by the reference dequantiser")
        vals = dequantize(ti.type_id, ti.data, ti.n_elements)   # float32, flat
        w.add_tensor_f32(ti.name, vals, dims=ti.dims)
        print(f"  {ti.name}: {GGML_TYPE_NAMES[ti.type_id]} dims {list(ti.dims)}")
    w.write(out_path)
    print(f"wrote {out_path} ({os.path.getsize(out_path)} bytes)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="llama/qwen2 GGUF model to compute logits for")
    src.add_argument("--dequant", help="GGUF whose tensors are dequantised")
    ap.add_argument("--out", required=True, help="golden GGUF to write")
    ap.add_argument("--case", action="append", type=parse_case, default=[],
                    help="NAME=id,id,... (logits mode; repeatable)")
    args = ap.parse_args(argv)
    if args.model:
        if not args.case:
            ap.error("--model needs at least one --case")
        make_logits_golden(args.model, args.out, args.case)
    else:
        if args.case:
            ap.error("--case is only for --model")
        make_dequant_golden(args.dequant, args.out)


if __name__ == "__main__":
    main()
