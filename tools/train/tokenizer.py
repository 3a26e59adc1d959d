#!/usr/bin/python3
"""Train the shared SentencePiece BPE tokenizer (vocabulary 4096, byte fallback) on a deterministic sample of
the training split.  Writes tools/train/work/tok/spm.model (+ .vocab).

Choices (see the project's training notes): identity normalisation (lossless: code must round-trip byte for
byte), no dummy prefix (completion prompts start mid-line), whitespace runs kept (indentation is code),
split_by_unicode_script off, byte fallback on.  Ids: 0 <unk>, 1 <s>, 2 </s>, 3 <fim_prefix>, 4 <fim_suffix>,
5 <fim_middle> (control tokens), then 256 byte tokens <0x00>..<0xFF>, then the learned pieces.
"""

from __future__ import annotations

import argparse
import json
import os
import random

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")
FIM_TOKENS = ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"]
# The ids SentencePiece gives the special pieces with this configuration (the order above); every tool uses these.
BOS, EOS, FIM_PRE, FIM_SUF, FIM_MID = 1, 2, 3, 4, 5


def chunks(text: str, max_chars: int = 3000):
    """Split a file into pieces of whole lines, each at most max_chars (SentencePiece's sentence limit)."""
    cur, n = [], 0
    for line in text.splitlines(keepends=True):
        if n + len(line) > max_chars and cur:
            yield "".join(cur)
            cur, n = [], 0
        if len(line) > max_chars:
            continue
        cur.append(line)
        n += len(line)
    if cur:
        yield "".join(cur)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=os.path.join(WORK, "corpus", "train.jsonl"))
    ap.add_argument("--out", default=os.path.join(WORK, "tok"))
    ap.add_argument("--sample-bytes-per-lang", type=int, default=4_000_000)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    docs = {}
    with open(args.corpus, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            docs.setdefault(d["lang"], []).append(d["text"])
    rng = random.Random(1234)
    sample = []
    for lang in sorted(docs):
        lst = docs[lang][:]
        rng.shuffle(lst)
        n = 0
        for t in lst:
            if n >= args.sample_bytes_per_lang:
                break
            for c in chunks(t):
                sample.append(c)
                n += len(c)
    rng.shuffle(sample)
    print(f"tokenizer sample: {len(sample)} chunks, {sum(map(len, sample)):,d} chars")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sample),
        model_prefix=os.path.join(args.out, "spm"),
        model_type="bpe",
        vocab_size=args.vocab,
        byte_fallback=True,
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        split_by_unicode_script=False,
        split_by_whitespace=True,
        allow_whitespace_only_pieces=True,
        split_digits=False,
        character_coverage=0.9999,
        max_sentence_length=8192,
        input_sentence_size=0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        control_symbols=FIM_TOKENS,
        num_threads=args.threads,
        minloglevel=1,
    )
    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.out, "spm.model"))
    test = "def f(x):\n    return x\n\tint i = 0;\n"
    ids = sp.encode(test)
    assert sp.decode(ids) == test, "tokenizer does not round-trip"
    print("pieces:", [sp.id_to_piece(i) for i in ids])
    print("fim ids:", [sp.piece_to_id(t) for t in FIM_TOKENS])


if __name__ == "__main__":
    main()
