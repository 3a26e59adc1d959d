#!/usr/bin/python3
"""Self-checks for the independent numpy reference (gguf_ref / llama_ref / make_golden).

Run:  /usr/bin/python3 tools/reference/test_ref.py      (-v for verbose)

What is checked
  * GGUF: writer -> reader round trip of every metadata type (incl. nested
    arrays), tensor table, alignment, data offset; the writer's bytes against
    a file assembled by hand with struct; a hand-assembled v2 file.
  * Dequantisation: for every type a literal block whose expected outputs were
    worked out by hand from the block description (nibble order, high bits,
    scale packing, signs); plus multi-block random tests where the blocks are
    packed by test-side packers written after ggml's quantize_row_*_ref
    packing code and the expected values are computed one element at a time
    with float32 scalars.
  * RoPE: hand-computed normal vs NeoX rotation, partial rotation, position 0,
    relative-position property.
  * Tiny model (built here with numpy, written with GGUFWriter): all-at-once
    logits == prefix-by-prefix logits (causality); == a naive per-token loop
    implementation with an explicit KV cache; GQA, qwen2 biases, tied output,
    quantised weights, make_golden end-to-end.
"""

from __future__ import annotations

import math
import os
import struct
import sys
import tempfile
import unittest
from contextlib import redirect_stdout
import io

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gguf_ref import (VT, GGMLType, GGUFArray, GGUFWriter, dequantize, read_gguf,  # noqa: E402
                      tensor_nbytes)
from llama_ref import LlamaRef, rope, ROPE_NEOX, ROPE_NORMAL  # noqa: E402
import make_golden  # noqa: E402

f32 = np.float32


def h16(x: float) -> bytes:
    """fp16 little-endian bytes of x (x must be exactly representable)."""
    b = np.array([x], dtype="<f2")
    assert float(b[0]) == x, x
    return b.tobytes()


def dq(type_id: int, raw: bytes, n: int) -> np.ndarray:
    return dequantize(type_id, raw, n)


# ============================================================================
# GGUF container
# ============================================================================

class TestGGUF(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def test_round_trip_all_types(self):
        w = GGUFWriter()
        w.add("k.u8", 250, VT.UINT8)
        w.add("k.i8", -100, VT.INT8)
        w.add("k.u16", 65000, VT.UINT16)
        w.add("k.i16", -32000, VT.INT16)
        w.add_u32("k.u32", 4_000_000_000)
        w.add_i32("k.i32", -2_000_000_000)
        w.add_f32("k.f32", 1.5)
        w.add("k.bool_t", True, VT.BOOL)
        w.add("k.bool_f", False, VT.BOOL)
        w.add_string("k.str", "héllo ✓")
        w.add_string("k.empty", "")
        w.add("k.u64", 2**63 + 5, VT.UINT64)
        w.add("k.i64", -2**62, VT.INT64)
        w.add("k.f64", math.pi, VT.FLOAT64)
        w.add_array_i32("k.arr_i32", [1, -2, 3])
        w.add_array_string("k.arr_str", ["a", "", "ü"])
        w.add("k.arr_empty", [], VT.ARRAY, VT.FLOAT32)
        w.add("k.arr_f64", [0.25, -1e300], VT.ARRAY, VT.FLOAT64)
        w.add("k.arr_bool", [True, False, True], VT.ARRAY, VT.BOOL)
        nested = GGUFArray(VT.ARRAY, [GGUFArray(VT.INT32, [1, 2]), GGUFArray(VT.STRING, ["x"]),
                                      GGUFArray(VT.ARRAY, [GGUFArray(VT.UINT8, [7])])])
        w.add("k.nested", nested, VT.ARRAY)

        a = np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5      # dims [4, 3]
        b = np.array([1.25], dtype=np.float32)                        # dims [1]
        c = np.random.default_rng(0).standard_normal((2, 3, 5)).astype(np.float32)
        w.add_tensor_f32("t.a", a)
        w.add_tensor_f32("t.b", b)
        w.add_tensor_f32("t.c", c)
        q8 = h16(0.5) + bytes(range(32))
        w.add_tensor_raw("t.q8", GGMLType.Q8_0, [32], q8)
        p = self.path("rt.gguf")
        w.write(p)

        g = read_gguf(p)
        self.assertEqual(g.version, 3)
        self.assertEqual(g.alignment, 32)
        self.assertEqual(g.data_offset % 32, 0)
        md = g.metadata
        self.assertEqual(md["k.u8"], 250)
        self.assertEqual(md["k.i8"], -100)
        self.assertEqual(md["k.u16"], 65000)
        self.assertEqual(md["k.i16"], -32000)
        self.assertEqual(md["k.u32"], 4_000_000_000)
        self.assertEqual(md["k.i32"], -2_000_000_000)
        self.assertEqual(md["k.f32"], 1.5)
        self.assertIs(md["k.bool_t"], True)
        self.assertIs(md["k.bool_f"], False)
        self.assertEqual(md["k.str"], "héllo ✓")
        self.assertEqual(md["k.empty"], "")
        self.assertEqual(md["k.u64"], 2**63 + 5)
        self.assertEqual(md["k.i64"], -2**62)
        self.assertEqual(md["k.f64"], math.pi)
        self.assertEqual(md["k.arr_i32"], [1, -2, 3])
        self.assertEqual(md["k.arr_i32"].elem_type, VT.INT32)
        self.assertEqual(md["k.arr_str"], ["a", "", "ü"])
        self.assertEqual(md["k.arr_str"].elem_type, VT.STRING)
        self.assertEqual(md["k.arr_empty"], [])
        self.assertEqual(md["k.arr_empty"].elem_type, VT.FLOAT32)
        self.assertEqual(md["k.arr_f64"], [0.25, -1e300])
        self.assertEqual(md["k.arr_bool"], [True, False, True])
        self.assertEqual(md["k.nested"], [[1, 2], ["x"], [[7]]])
        self.assertEqual(md["k.nested"].elem_type, VT.ARRAY)
        self.assertEqual(md["k.nested"][1].elem_type, VT.STRING)
        self.assertEqual(md["k.nested"][2][0].elem_type, VT.UINT8)
        self.assertEqual(g.metadata_types["k.u16"], VT.UINT16)
        self.assertEqual(g.metadata_types["k.nested"], VT.ARRAY)

        self.assertEqual([t.name for t in g.tensors], ["t.a", "t.b", "t.c", "t.q8"])
        self.assertEqual(g.tensor("t.a").dims, (4, 3))
        self.assertEqual(g.tensor("t.c").dims, (5, 3, 2))
        for t in g.tensors:
            self.assertEqual(t.offset % 32, 0)
        np.testing.assert_array_equal(g.tensor_f32("t.a"), a)
        np.testing.assert_array_equal(g.tensor_f32("t.b"), b)
        np.testing.assert_array_equal(g.tensor_f32("t.c"), c)
        self.assertEqual(bytes(g.tensor("t.q8").data), q8)
        np.testing.assert_array_equal(g.tensor_f32("t.q8"), 0.5 * np.arange(32, dtype=np.float32))

    def test_custom_alignment(self):
        w = GGUFWriter(alignment=64)
        w.add_tensor_f32("a", np.ones(3, np.float32))
        w.add_tensor_f32("b", np.full(5, 2.0, np.float32))
        p = self.path("al.gguf")
        w.write(p)
        g = read_gguf(p)
        self.assertEqual(g.alignment, 64)
        self.assertEqual(g.metadata_types["general.alignment"], VT.UINT32)
        self.assertEqual(g.data_offset % 64, 0)
        self.assertEqual(g.tensor("b").offset, 64)   # a: 12 bytes, padded to 64
        np.testing.assert_array_equal(g.tensor_f32("b"), np.full(5, 2.0, np.float32))

    def test_writer_bytes_match_hand_layout(self):
        # One u32 kv and one 2-element f32 tensor, assembled by hand from the spec.
        w = GGUFWriter()
        w.add_u32("a", 7)
        w.add_tensor_f32("w", np.array([1.0, -2.0], np.float32))
        got = w.to_bytes()
        exp = bytearray()
        exp += b"GGUF" + struct.pack("<I", 3) + struct.pack("<Q", 1) + struct.pack("<Q", 1)
        exp += struct.pack("<Q", 1) + b"a" + struct.pack("<I", 4) + struct.pack("<I", 7)
        exp += struct.pack("<Q", 1) + b"w" + struct.pack("<I", 1) + struct.pack("<Q", 2)
        exp += struct.pack("<I", 0) + struct.pack("<Q", 0)
        exp += b"\0" * (-len(exp) % 32)
        exp += struct.pack("<2f", 1.0, -2.0)
        exp += b"\0" * (-len(exp) % 32)
        self.assertEqual(got, bytes(exp))

    def test_hand_built_v2_file(self):
        # GGUF v2, alignment 16 via general.alignment, string array + f16 tensor.
        b = bytearray()
        b += b"GGUF" + struct.pack("<IQQ", 2, 1, 2)
        b += struct.pack("<Q", 17) + b"general.alignment" + struct.pack("<II", 4, 16)
        b += struct.pack("<Q", 3) + b"arr" + struct.pack("<IIQ", 9, 8, 2)
        b += struct.pack("<Q", 2) + b"hi" + struct.pack("<Q", 0)
        b += struct.pack("<Q", 1) + b"h" + struct.pack("<I", 2) + struct.pack("<QQ", 2, 1)
        b += struct.pack("<IQ", 1, 0)                      # F16, offset 0
        data_off = (len(b) + 15) // 16 * 16
        b += b"\0" * (data_off - len(b))
        b += np.array([1.0, -0.5], dtype="<f2").tobytes()
        p = self.path("v2.gguf")
        with open(p, "wb") as f:
            f.write(b)
        g = read_gguf(p)
        self.assertEqual(g.version, 2)
        self.assertEqual(g.alignment, 16)
        self.assertEqual(g.data_offset, data_off)
        self.assertEqual(g.metadata["arr"], ["hi", ""])
        self.assertEqual(g.tensor("h").dims, (2, 1))
        np.testing.assert_array_equal(g.tensor_f32("h"), np.array([[1.0, -0.5]], np.float32))

    def test_rejects_bad_files(self):
        p = self.path("bad.gguf")
        for blob in [b"GGML" + b"\0" * 20, b"GGUF" + struct.pack("<IQQ", 1, 0, 0),
                     b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 100)]:
            with open(p, "wb") as f:
                f.write(blob)
            with self.assertRaises(ValueError):
                read_gguf(p)


# ============================================================================
# Dequantisation: hand-derived literal blocks
# ============================================================================

class TestDequantHand(unittest.TestCase):

    def test_f32_f16_bf16(self):
        np.testing.assert_array_equal(dq(GGMLType.F32, struct.pack("<3f", 1.0, -2.5, 3e-40), 3),
                                      np.array([1.0, -2.5, 3e-40], np.float32))
        y = dq(GGMLType.F16, struct.pack("<4H", 0x3C00, 0x0001, 0x7C00, 0xC000), 4)
        self.assertEqual(y[0], 1.0)
        self.assertEqual(y[1], 2.0 ** -24)            # smallest subnormal half
        self.assertEqual(y[2], np.inf)
        self.assertEqual(y[3], -2.0)
        y = dq(GGMLType.BF16, struct.pack("<3H", 0x3F80, 0xC040, 0x3F81), 3)
        np.testing.assert_array_equal(y, np.array([1.0, -3.0, 1.0 + 2.0 ** -7], np.float32))
        self.assertEqual(y.dtype, np.float32)

    def test_q4_0(self):
        # d = 0.5; qs[0] = 0x2F -> y0 = (15-8)*d, y16 = (2-8)*d; qs[1] = 0x80 -> y1 = -8d, y17 = 0
        qs = bytearray([0x88] * 16)
        qs[0], qs[1] = 0x2F, 0x80
        y = dq(GGMLType.Q4_0, h16(0.5) + bytes(qs), 32)
        self.assertEqual((y[0], y[16], y[1], y[17], y[5]), (3.5, -3.0, -4.0, 0.0, 0.0))

    def test_q4_1(self):
        # d = 0.5, m = -1: y = q*d + m.  qs[0] = 0x2F, qs[15] = 0xA1
        qs = bytearray(16)
        qs[0], qs[15] = 0x2F, 0xA1
        y = dq(GGMLType.Q4_1, h16(0.5) + h16(-1.0) + bytes(qs), 32)
        self.assertEqual((y[0], y[16], y[15], y[31], y[3]), (6.5, 0.0, -0.5, 4.0, -1.0))

    def test_q5_0(self):
        # d = 0.25; qh = 0x80010001 (bytes 01 00 01 80): 5th bit set for elements 0, 16, 31
        qs = bytearray(16)
        qs[0] = 0x3F
        y = dq(GGMLType.Q5_0, h16(0.25) + bytes([0x01, 0x00, 0x01, 0x80]) + bytes(qs), 32)
        self.assertEqual(y[0], (31 - 16) * 0.25)     # 0xF | 16
        self.assertEqual(y[16], (19 - 16) * 0.25)    # 0x3 | 16
        self.assertEqual(y[1], -4.0)                 # 0 - 16
        self.assertEqual(y[17], -4.0)
        self.assertEqual(y[15], -4.0)
        self.assertEqual(y[31], 0.0)                 # 0 | 16 - 16

    def test_q5_1(self):
        # d = 1, m = 0.5; qh bit 1 set -> element 1 gets +16; qs[1] = 0x47
        qs = bytearray(16)
        qs[1] = 0x47
        y = dq(GGMLType.Q5_1, h16(1.0) + h16(0.5) + bytes([0x02, 0, 0, 0]) + bytes(qs), 32)
        self.assertEqual((y[1], y[17], y[0]), (23.5, 4.5, 0.5))

    def test_q8_0(self):
        qs = bytearray(32)
        qs[0], qs[31], qs[5] = 0x81, 0x7F, 0xFF      # -127, 127, -1
        y = dq(GGMLType.Q8_0, h16(2.0) + bytes(qs), 32)
        self.assertEqual((y[0], y[31], y[5], y[6]), (-254.0, 254.0, -2.0, 0.0))

    def test_q2_k(self):
        # layout: scales[16] | qs[64] | d | dmin ; d = 1, dmin = 0.5
        scales = bytearray(16)
        scales[0] = 0x32          # elements 0..15: scale 2, min 3
        scales[2] = 0x04          # elements 32..47: scale 4, min 0
        scales[6] = 0x11          # elements 96..111: scale 1, min 1
        scales[9] = 0x15          # elements 144..159: scale 5, min 1
        qs = bytearray(64)
        qs[0] = 0xE4              # 2-bit planes 0,1,2,3 of byte 0 = 0,1,2,3 -> elements 0,32,64,96
        qs[49] = 0x03             # byte 32+17, plane 0 -> element 128+17 = 145
        y = dq(GGMLType.Q2_K, bytes(scales) + bytes(qs) + h16(1.0) + h16(0.5), 256)
        self.assertEqual(y[0], 2 * 0 - 0.5 * 3)       # -1.5
        self.assertEqual(y[1], -1.5)
        self.assertEqual(y[32], 4 * 1 - 0.0)          # 4
        self.assertEqual(y[64], 0.0)                  # scales[4] = 0
        self.assertEqual(y[96], 1 * 3 - 0.5 * 1)      # 2.5
        self.assertEqual(y[145], 5 * 3 - 0.5 * 1)     # 14.5
        self.assertEqual(y[144], 5 * 0 - 0.5)         # same sub-block, q = 0

    def test_q3_k(self):
        # layout: hmask[32] | qs[64] | scales[12] | d ; d = 0.5
        s = bytearray(12)
        s[0] = 0x03; s[8] = 0x02          # scale 0  = 0b10_0011 = 35 -> +3
        s[1] = 0xB0; s[9] = 0x10          # scale 9  = low 0xB (s[1]>>4), high 1 (s[9] bits 4-5) = 27 -> -5
        s[7] = 0xF0; s[11] = 0xC0         # scale 15 = low 0xF (s[7]>>4), high 3 (s[11] bits 6-7) = 63 -> +31
        hmask = bytearray(32)
        hmask[0] = 0x01                   # element 0: high bit set -> no -4
        hmask[20] = 0x10                  # element 128+20: bit 4 = (h=1, plane 0) set
        qs = bytearray(64)
        qs[0] = 0x09                      # plane 0 -> 1 (element 0), plane 1 -> 2 (element 32)
        qs[52] = 0x03                     # byte 32+20, plane 0 -> 3 (element 148)
        y = dq(GGMLType.Q3_K, bytes(hmask) + bytes(qs) + bytes(s) + h16(0.5), 256)
        self.assertEqual(y[0], 0.5 * 3 * 1)                  # 1.5
        self.assertEqual(y[32], 0.5 * (0 - 32) * (2 - 4))    # scale 2 = 0 -> -32; no hbit -> 2-4; = 32
        self.assertEqual(y[148], 0.5 * (-5) * 3)             # -7.5
        self.assertEqual(y[255], 0.5 * 31 * (0 - 4))         # -62
        self.assertEqual(y[1], 0.5 * 3 * (0 - 4))            # qs[1] = 0, hmask[1] = 0 -> -4; = -6

    def test_q4_k(self):
        # layout: d | dmin | scales[12] | qs[128] ; d = 0.5, dmin = 0.25
        s = bytearray(12)
        s[0] = 10; s[4] = 3               # sub-block 0: sc 10, min 3
        # sub-block 5: sc 45 = 0b10_1101, min 50 = 0b11_0010 (j >= 4 packing)
        s[9] = 0x2D                       # low nibble = sc & 0xF, high nibble = min & 0xF
        s[1] = 0x80                       # bits 6-7 of s[j-4] = sc >> 4 = 2; low 6 bits = sc[1] = 0
        s[5] = 0xC0                       # bits 6-7 of s[j]   = min >> 4 = 3; low 6 bits = min[1] = 0
        qs = bytearray(128)
        qs[0] = 0x7C                      # element 0 = 12 (low nibble), element 32 = 7 (high)
        qs[67] = 0x90                     # group 2 (bytes 64..95), high nibble -> element 128+32+3 = 163
        y = dq(GGMLType.Q4_K, h16(0.5) + h16(0.25) + bytes(s) + bytes(qs), 256)
        self.assertEqual(y[0], 5.0 * 12 - 0.75)               # 59.25
        self.assertEqual(y[1], -0.75)
        self.assertEqual(y[32], 0.0)                          # sub-block 1: sc 0, min 0
        self.assertEqual(y[163], 0.5 * 45 * 9 - 0.25 * 50)    # 190
        self.assertEqual(y[160], -0.25 * 50)                  # same sub-block, q = 0

    def test_q5_k(self):
        # layout: d | dmin | scales[12] | qh[32] | qs[128] ; d = 1, dmin = 0.5
        s = bytearray(12)
        s[0] = 2; s[4] = 1                # sub-block 0: sc 2, min 1
        # sub-block 7: sc 63 = 0b11_1111, min 17 = 0b01_0001
        s[11] = 0x1F; s[3] = 0xC0; s[7] = 0x40
        qh = bytearray(32)
        qh[0] = 0x01                      # bit 0 -> element 0 gets +16
        qh[31] = 0x80                     # bit 7 -> group 3, high nibble, l = 31 -> element 255
        qs = bytearray(128)
        qs[0] = 0x05
        qs[127] = 0xE0
        y = dq(GGMLType.Q5_K, h16(1.0) + h16(0.5) + bytes(s) + bytes(qh) + bytes(qs), 256)
        self.assertEqual(y[0], 2 * 21 - 0.5)                  # 41.5
        self.assertEqual(y[255], 63 * 30 - 0.5 * 17)          # 1881.5
        self.assertEqual(y[32], 0.0)
        self.assertEqual(y[223], 0.0)                         # group 3 low nibble, sub-block 6 = 0
        self.assertEqual(y[224], 63 * 0 - 8.5)                # sub-block 7, q = 0

    def test_q6_k(self):
        # layout: ql[128] | qh[64] | scales[16] (int8) | d ; d = 0.5
        ql = bytearray(128)
        qh = bytearray(64)
        sc = bytearray(16)
        ql[0] = 0x3A                      # t=0 low nibble 0xA (element 0), t=2 high nibble 3 (element 64)
        qh[0] = 0xE6                      # 2-bit fields: t0 = 2, t1 = 1, t2 = 2, t3 = 3
        sc[0] = 0xFD                      # -3
        sc[2] = 1
        sc[4] = 7
        sc[6] = 0x80                      # -128
        ql[113] = 0x0F                    # h=1, t=1 (bytes 64+32..), l = 17 -> element 128+32+17 = 177
        qh[49] = 0x0C                     # h=1, l=17, t1 field = 3
        sc[11] = 2                        # 8*h + 2*t + l//16 = 8 + 2 + 1
        y = dq(GGMLType.Q6_K, bytes(ql) + bytes(qh) + bytes(sc) + h16(0.5), 256)
        self.assertEqual(y[0], 0.5 * -3 * ((0xA | 2 << 4) - 32))      # -15
        self.assertEqual(y[32], 0.5 * 1 * ((0x0 | 1 << 4) - 32))      # -8
        self.assertEqual(y[64], 0.5 * 7 * ((0x3 | 2 << 4) - 32))      # 10.5
        self.assertEqual(y[96], 0.5 * -128 * ((0x0 | 3 << 4) - 32))   # -1024
        self.assertEqual(y[177], 0.5 * 2 * ((0xF | 3 << 4) - 32))     # 31
        self.assertEqual(y[1], 0.5 * -3 * -32)                        # all-zero bits -> q = -32


# ============================================================================
# Dequantisation: random multi-block tests via test-side packers
# (packing follows ggml's quantize_row_*_ref; expectations are per element)
# ============================================================================

EXTREME_F16 = [2.0 ** -24, -(2.0 ** -24), 6.1e-05, 65504.0, -65504.0, -0.0, 0.0, 1.0 / 3.0]


def rand_f16(rng, scale=1.0) -> float:
    """Random fp16-representable scale; sometimes subnormal / max / signed zero."""
    if rng.random() < 0.25:
        return float(np.float16(EXTREME_F16[rng.integers(len(EXTREME_F16))]))
    return float(np.float16(rng.uniform(-scale, scale) * 2.0 ** rng.integers(-12, 8)))


def ref_q4_0(rng, nb):
    raw, exp = bytearray(), []
    for _ in range(nb):
        d = rand_f16(rng)
        q = rng.integers(0, 16, 32)
        raw += h16(d) + bytes(int(q[j] | q[j + 16] << 4) for j in range(16))
        exp += [f32(int(q[i]) - 8) * f32(d) for i in range(32)]
    return bytes(raw), exp


def ref_q4_1(rng, nb):
    raw, exp = bytearray(), []
    for _ in range(nb):
        d, m = rand_f16(rng), rand_f16(rng)
        q = rng.integers(0, 16, 32)
        raw += h16(d) + h16(m) + bytes(int(q[j] | q[j + 16] << 4) for j in range(16))
        exp += [f32(int(q[i])) * f32(d) + f32(m) for i in range(32)]
    return bytes(raw), exp


def _pack_q5(q):
    qh = 0
    qs = bytearray(16)
    for j in range(16):
        qs[j] = (q[j] & 0xF) | ((q[j + 16] & 0xF) << 4)
        qh |= ((q[j] >> 4) & 1) << j
        qh |= ((q[j + 16] >> 4) & 1) << (j + 16)
    return struct.pack("<I", qh) + bytes(qs)


def ref_q5_0(rng, nb):
    raw, exp = bytearray(), []
    for _ in range(nb):
        d = rand_f16(rng)
        q = [int(v) for v in rng.integers(0, 32, 32)]
        raw += h16(d) + _pack_q5(q)
        exp += [f32(q[i] - 16) * f32(d) for i in range(32)]
    return bytes(raw), exp


def ref_q5_1(rng, nb):
    raw, exp = bytearray(), []
    for _ in range(nb):
        d, m = rand_f16(rng), rand_f16(rng)
        q = [int(v) for v in rng.integers(0, 32, 32)]
        raw += h16(d) + h16(m) + _pack_q5(q)
        exp += [f32(q[i]) * f32(d) + f32(m) for i in range(32)]
    return bytes(raw), exp


def ref_q8_0(rng, nb):
    raw, exp = bytearray(), []
    for _ in range(nb):
        d = rand_f16(rng)
        q = [int(v) for v in rng.integers(-128, 128, 32)]
        raw += h16(d) + struct.pack("<32b", *q)
        exp += [f32(q[i]) * f32(d) for i in range(32)]
    return bytes(raw), exp


def _pack_2bit_planes(L):
    """qs[64]: for each 128-half, byte l holds L[l], L[l+32], L[l+64], L[l+96] in bits 0-1, 2-3, 4-5, 6-7."""
    qs = bytearray(64)
    for j in (0, 128):
        for l in range(32):
            qs[j // 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6)
    return bytes(qs)


def ref_q2_k(rng, nb):
    raw, exp = bytearray(), []
    for _ in range(nb):
        d, dmin = rand_f16(rng), rand_f16(rng)
        sc = [int(v) for v in rng.integers(0, 16, 16)]
        mn = [int(v) for v in rng.integers(0, 16, 16)]
        L = [int(v) for v in rng.integers(0, 4, 256)]
        raw += bytes(sc[j] | mn[j] << 4 for j in range(16)) + _pack_2bit_planes(L) + h16(d) + h16(dmin)
        for i in range(256):
            dl = f32(d) * f32(sc[i // 16])
            ml = f32(dmin) * f32(mn[i // 16])
            exp.append(dl * f32(L[i]) - ml)
    return bytes(raw), exp


def ref_q3_k(rng, nb):
    raw, exp = bytearray(), []
    for _ in range(nb):
        d = rand_f16(rng)
        s = [int(v) for v in rng.integers(-32, 32, 16)]
        L = [int(v) for v in rng.integers(-4, 4, 256)]
        scales = bytearray(12)
        for j in range(16):
            l = s[j] + 32
            if j < 8:
                scales[j] = l & 0xF
            else:
                scales[j - 8] |= (l & 0xF) << 4
            scales[j % 4 + 8] |= (l >> 4) << (2 * (j // 4))
        Lq = [v + 4 for v in L]
        hmask = bytearray(32)
        for j in range(256):                 # element j: hmask byte j % 32, bit j // 32
            if Lq[j] > 3:
                hmask[j % 32] |= 1 << (j // 32)
                Lq[j] -= 4
        raw += bytes(hmask) + _pack_2bit_planes(Lq) + bytes(scales) + h16(d)
        for i in range(256):
            exp.append((f32(d) * f32(s[i // 16])) * f32(L[i]))
    return bytes(raw), exp


def _pack_k4_scales(sc, mn):
    s = bytearray(12)
    for j in range(8):
        if j < 4:
            s[j] = sc[j]
            s[j + 4] = mn[j]
        else:
            s[j + 4] = (sc[j] & 0xF) | ((mn[j] & 0xF) << 4)
            s[j - 4] |= (sc[j] >> 4) << 6
            s[j] |= (mn[j] >> 4) << 6
    return bytes(s)


def ref_q4_k(rng, nb):
    raw, exp = bytearray(), []
    for _ in range(nb):
        d, dmin = rand_f16(rng), rand_f16(rng)
        sc = [int(v) for v in rng.integers(0, 64, 8)]
        mn = [int(v) for v in rng.integers(0, 64, 8)]
        L = [int(v) for v in rng.integers(0, 16, 256)]
        qs = bytearray()
        for j in range(0, 256, 64):
            qs += bytes(L[j + l] | (L[j + l + 32] << 4) for l in range(32))
        raw += h16(d) + h16(dmin) + _pack_k4_scales(sc, mn) + bytes(qs)
        for i in range(256):
            exp.append((f32(d) * f32(sc[i // 32])) * f32(L[i]) - f32(dmin) * f32(mn[i // 32]))
    return bytes(raw), exp


def ref_q5_k(rng, nb):
    raw, exp = bytearray(), []
    for _ in range(nb):
        d, dmin = rand_f16(rng), rand_f16(rng)
        sc = [int(v) for v in rng.integers(0, 64, 8)]
        mn = [int(v) for v in rng.integers(0, 64, 8)]
        L = [int(v) for v in rng.integers(0, 32, 256)]
        qh = bytearray(32)
        ql = bytearray()
        m1, m2 = 1, 2
        for n in range(0, 256, 64):
            chunk = bytearray(32)
            for j in range(32):
                l1, l2 = L[n + j], L[n + j + 32]
                if l1 > 15:
                    l1 -= 16
                    qh[j] |= m1
                if l2 > 15:
                    l2 -= 16
                    qh[j] |= m2
                chunk[j] = l1 | (l2 << 4)
            ql += chunk
            m1 <<= 2
            m2 <<= 2
        raw += h16(d) + h16(dmin) + _pack_k4_scales(sc, mn) + bytes(qh) + bytes(ql)
        for i in range(256):
            exp.append((f32(d) * f32(sc[i // 32])) * f32(L[i]) - f32(dmin) * f32(mn[i // 32]))
    return bytes(raw), exp


def ref_q6_k(rng, nb):
    raw, exp = bytearray(), []
    for _ in range(nb):
        d = rand_f16(rng)
        sc = [int(v) for v in rng.integers(-128, 128, 16)]
        L = [int(v) for v in rng.integers(-32, 32, 256)]
        Lq = [v + 32 for v in L]
        ql = bytearray(128)
        qh = bytearray(64)
        for half, j in enumerate((0, 128)):
            for l in range(32):
                q1, q2, q3, q4 = (Lq[j + l + 32 * t] for t in range(4))
                ql[64 * half + l] = (q1 & 0xF) | ((q3 & 0xF) << 4)
                ql[64 * half + l + 32] = (q2 & 0xF) | ((q4 & 0xF) << 4)
                qh[32 * half + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
        raw += bytes(ql) + bytes(qh) + struct.pack("<16b", *sc) + h16(d)
        for i in range(256):
            exp.append((f32(d) * f32(sc[i // 16])) * f32(L[i]))
    return bytes(raw), exp


RANDOM_REFS = {
    GGMLType.Q4_0: (ref_q4_0, 32), GGMLType.Q4_1: (ref_q4_1, 32),
    GGMLType.Q5_0: (ref_q5_0, 32), GGMLType.Q5_1: (ref_q5_1, 32),
    GGMLType.Q8_0: (ref_q8_0, 32), GGMLType.Q2_K: (ref_q2_k, 256),
    GGMLType.Q3_K: (ref_q3_k, 256), GGMLType.Q4_K: (ref_q4_k, 256),
    GGMLType.Q5_K: (ref_q5_k, 256), GGMLType.Q6_K: (ref_q6_k, 256),
}


def exact_dequant(t, raw, n):
    """float64 evaluation of the block formulas, one element at a time, reading
    the fields with struct (a third, loop-based decoding of the layouts)."""
    blk, size = {GGMLType.Q4_0: (32, 18), GGMLType.Q4_1: (32, 20), GGMLType.Q5_0: (32, 22),
                 GGMLType.Q5_1: (32, 24), GGMLType.Q8_0: (32, 34), GGMLType.Q2_K: (256, 84),
                 GGMLType.Q3_K: (256, 110), GGMLType.Q4_K: (256, 144), GGMLType.Q5_K: (256, 176),
                 GGMLType.Q6_K: (256, 210)}[t]
    out = []

    def half(b, o):
        return float(np.frombuffer(b[o:o + 2], "<f2")[0])

    for bi in range(n // blk):
        b = raw[bi * size:(bi + 1) * size]
        for i in range(blk):
            if t in (GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1):
                off = {GGMLType.Q4_0: 2, GGMLType.Q4_1: 4, GGMLType.Q5_0: 6, GGMLType.Q5_1: 8}[t]
                q = (b[off + i % 16] >> (4 * (i // 16))) & 0xF
                if t in (GGMLType.Q5_0, GGMLType.Q5_1):
                    qh = struct.unpack_from("<I", b, off - 4)[0]
                    q |= ((qh >> i) & 1) << 4
                if t == GGMLType.Q4_0:
                    v = (q - 8) * half(b, 0)
                elif t == GGMLType.Q5_0:
                    v = (q - 16) * half(b, 0)
                else:
                    v = q * half(b, 0) + half(b, 2)
            elif t == GGMLType.Q8_0:
                v = struct.unpack_from("<b", b, 2 + i)[0] * half(b, 0)
            elif t == GGMLType.Q2_K:
                hh, j, k = i // 128, (i % 128) // 32, i % 32
                q = (b[16 + 32 * hh + k] >> (2 * j)) & 3
                s = b[i // 16]
                v = half(b, 80) * (s & 0xF) * q - half(b, 82) * (s >> 4)
            elif t == GGMLType.Q3_K:
                hh, j, k = i // 128, (i % 128) // 32, i % 32
                q = ((b[32 + 32 * hh + k] >> (2 * j)) & 3) - (0 if (b[k] >> (i // 32)) & 1 else 4)
                sj = i // 16
                sb = b[96:108]
                low = sb[sj] & 0xF if sj < 8 else sb[sj - 8] >> 4
                s = (low | (((sb[8 + sj % 4] >> (2 * (sj // 4))) & 3) << 4)) - 32
                v = half(b, 108) * s * q
            elif t in (GGMLType.Q4_K, GGMLType.Q5_K):
                sb = b[4:16]
                j = i // 32
                if j < 4:
                    sc, m = sb[j] & 63, sb[j + 4] & 63
                else:
                    sc = (sb[j + 4] & 0xF) | ((sb[j - 4] >> 6) << 4)
                    m = (sb[j + 4] >> 4) | ((sb[j] >> 6) << 4)
                qoff = 16 if t == GGMLType.Q4_K else 48
                q = (b[qoff + 32 * (i // 64) + i % 32] >> (4 * (j % 2))) & 0xF
                if t == GGMLType.Q5_K:
                    q += 16 * ((b[16 + i % 32] >> j) & 1)
                v = half(b, 0) * sc * q - half(b, 2) * m
            else:  # Q6_K
                hh, tt, l = i // 128, (i % 128) // 32, i % 32
                low = (b[64 * hh + 32 * (tt % 2) + l] >> (4 * (tt // 2))) & 0xF
                high = (b[128 + 32 * hh + l] >> (2 * tt)) & 3
                s = struct.unpack_from("<b", b, 192 + i // 16)[0]
                v = half(b, 208) * s * ((low | high << 4) - 32)
            out.append(v)
    return np.array(out, dtype=np.float64)


class TestDequantRandom(unittest.TestCase):

    def test_random_blocks_bit_exact(self):
        rng = np.random.default_rng(1234)
        for t, (fn, blk) in RANDOM_REFS.items():
            with self.subTest(type=t):
                nb = 5
                raw, exp = fn(rng, nb)
                self.assertEqual(len(raw), tensor_nbytes(t, nb * blk))
                y = dequantize(t, raw, nb * blk)
                self.assertEqual(y.dtype, np.float32)
                exp = np.array(exp, dtype=np.float32)
                # bit-exact: same float32 operations in the same order
                np.testing.assert_array_equal(y.view(np.uint32), exp.view(np.uint32))

    def test_exact_in_float64(self):
        # Every product in the formulas (fp16 scale x small ints) is exact in float32,
        # so the only rounding is the final +/-: evaluating the same formula exactly
        # (float64) and rounding once must give identical bits.  Hence the dequant
        # goldens do not depend on evaluation order or FMA contraction.
        rng = np.random.default_rng(77)
        for t, (fn, blk) in RANDOM_REFS.items():
            with self.subTest(type=t):
                raw, _ = fn(rng, 8)
                y = dequantize(t, raw, 8 * blk)
                exact = exact_dequant(t, raw, 8 * blk)
                np.testing.assert_array_equal(y.view(np.uint32), exact.astype(np.float32).view(np.uint32))

    def test_make_golden_dequant_end_to_end(self):
        rng = np.random.default_rng(99)
        w = GGUFWriter()
        expected = {}
        for t, (fn, blk) in RANDOM_REFS.items():
            raw, exp = fn(rng, 4)                       # 4 blocks as a [2*blk, 2] tensor
            name = f"w.{t}"
            w.add_tensor_raw(name, t, [2 * blk, 2], raw)
            expected[name] = np.array(exp, np.float32).reshape(2, 2 * blk)
        w.add_tensor_raw("w.f16", GGMLType.F16, [3], np.array([1, 2, -3], "<f2").tobytes())
        expected["w.f16"] = np.array([1, 2, -3], np.float32)
        with tempfile.TemporaryDirectory() as d:
            qp, gp = os.path.join(d, "quant_types.gguf"), os.path.join(d, "g.gguf")
            w.write(qp)
            with redirect_stdout(io.StringIO()):
                make_golden.main(["--dequant", qp, "--out", gp])
            g = read_gguf(gp)
            self.assertEqual(g.metadata["golden.model"], "quant_types.gguf")
            q = read_gguf(qp)
            self.assertEqual([t.name for t in g.tensors], [t.name for t in q.tensors])
            for ti in g.tensors:
                self.assertEqual(ti.type_id, GGMLType.F32)
                self.assertEqual(ti.dims, q.tensor(ti.name).dims)
                np.testing.assert_array_equal(g.tensor_f32(ti.name), expected[ti.name])


# ============================================================================
# RoPE
# ============================================================================

class TestRope(unittest.TestCase):

    def test_modes_hand_values(self):
        x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).reshape(1, 1, 6)   # one token, one head, D = 6
        c0, s0 = math.cos(1.0), math.sin(1.0)          # j = 0: theta = p * 1
        c1, s1 = math.cos(0.01), math.sin(0.01)        # j = 1: theta = p * 10000^(-2/4) = 0.01
        normal = rope(x, [1], 4, 10000.0, ROPE_NORMAL).reshape(6)
        exp_normal = [1 * c0 - 2 * s0, 1 * s0 + 2 * c0,      # pair (x0, x1)
                      3 * c1 - 4 * s1, 3 * s1 + 4 * c1,      # pair (x2, x3)
                      5, 6]                                  # beyond n_rot: untouched
        np.testing.assert_allclose(normal, exp_normal, rtol=0, atol=1e-15)
        neox = rope(x, [1], 4, 10000.0, ROPE_NEOX).reshape(6)
        exp_neox = [1 * c0 - 3 * s0, 2 * c1 - 4 * s1,        # pairs (x0, x2) and (x1, x3)
                    1 * s0 + 3 * c0, 2 * s1 + 4 * c1,
                    5, 6]
        np.testing.assert_allclose(neox, exp_neox, rtol=0, atol=1e-15)
        self.assertGreater(np.abs(normal - neox).max(), 0.5)
        # position 0 is the identity in both modes
        for mode in (ROPE_NORMAL, ROPE_NEOX):
            np.testing.assert_array_equal(rope(x, [0], 4, 10000.0, mode), x)

    def test_relative_position(self):
        # <rope(q, p1), rope(k, p2)> depends only on p1 - p2 (both modes, per head)
        rng = np.random.default_rng(5)
        q = rng.standard_normal((1, 2, 8))
        k = rng.standard_normal((1, 2, 8))
        for mode in (ROPE_NORMAL, ROPE_NEOX):
            a = np.sum(rope(q, [7], 8, 500.0, mode) * rope(k, [3], 8, 500.0, mode), axis=-1)
            b = np.sum(rope(q, [14], 8, 500.0, mode) * rope(k, [10], 8, 500.0, mode), axis=-1)
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# ============================================================================
# Tiny model
# ============================================================================

def build_tiny(path, arch="llama", seed=0, tied=False, biases=False, key_length=None, n_rot=None,
               quant_q8=False, n_head=4, n_head_kv=2, E=32, F=48, V=50, n_layer=2):
    """Random tiny model written with GGUFWriter.  Returns the numpy weights."""
    rng = np.random.default_rng(seed)
    D = key_length or E // n_head
    QD, KD = n_head * D, n_head_kv * D

    def r(*shape, s=0.3):
        return (rng.standard_normal(shape) * s).astype(np.float32)

    Wt = {"token_embd.weight": r(V, E, s=1.0),
          "output_norm.weight": (1 + r(E, s=0.1))}
    if not tied:
        Wt["output.weight"] = r(V, E)
    for i in range(n_layer):
        p = f"blk.{i}."
        Wt[p + "attn_norm.weight"] = 1 + r(E, s=0.1)
        Wt[p + "attn_q.weight"] = r(QD, E)           # GGUF dims [E, H*D]
        Wt[p + "attn_k.weight"] = r(KD, E)
        Wt[p + "attn_v.weight"] = r(KD, E)
        if biases:
            Wt[p + "attn_q.bias"] = r(QD)
            Wt[p + "attn_k.bias"] = r(KD)
            Wt[p + "attn_v.bias"] = r(KD)
        Wt[p + "attn_output.weight"] = r(E, QD)      # GGUF dims [H*D, E]
        Wt[p + "ffn_norm.weight"] = 1 + r(E, s=0.1)
        Wt[p + "ffn_gate.weight"] = r(F, E)
        Wt[p + "ffn_up.weight"] = r(F, E)
        Wt[p + "ffn_down.weight"] = r(E, F)

    w = GGUFWriter()
    w.add_string("general.architecture", arch)
    w.add_u32(f"{arch}.context_length", 64)
    w.add_u32(f"{arch}.embedding_length", E)
    w.add_u32(f"{arch}.block_count", n_layer)
    w.add_u32(f"{arch}.feed_forward_length", F)
    w.add_u32(f"{arch}.attention.head_count", n_head)
    w.add_u32(f"{arch}.attention.head_count_kv", n_head_kv)
    if key_length:
        w.add_u32(f"{arch}.attention.key_length", key_length)
        w.add_u32(f"{arch}.attention.value_length", key_length)
    if n_rot:
        w.add_u32(f"{arch}.rope.dimension_count", n_rot)
    w.add_f32(f"{arch}.rope.freq_base", 1000.0)
    w.add_f32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)
    for name, a in Wt.items():
        if quant_q8 and name.endswith("attn_q.weight"):
            # store as Q8_0 with d = 1/64 and q = round(a*64): the reference sees exactly q*d
            q = np.clip(np.round(a * 64), -127, 127).astype(np.int8).reshape(-1, 32)
            raw = b"".join(h16(1 / 64) + row.tobytes() for row in q)
            w.add_tensor_raw(name, GGMLType.Q8_0, list(reversed(a.shape)), raw)
            Wt[name] = (q.astype(np.float32) * f32(1 / 64)).reshape(a.shape)
        else:
            w.add_tensor_f32(name, a)
    w.write(path)
    hp = dict(arch=arch, E=E, F=F, V=V, H=n_head, Hkv=n_head_kv, D=D, n_layer=n_layer,
              n_rot=n_rot or D, base=1000.0, eps=1e-5, tied=tied)
    return {k: v.astype(np.float64) for k, v in Wt.items()}, hp


def naive_forward(W, hp, tokens):
    """Deliberately plain per-token implementation with an explicit KV cache."""
    H, Hkv, D, n_rot = hp["H"], hp["Hkv"], hp["D"], hp["n_rot"]
    neox = hp["arch"] == "qwen2"

    def rmsn(v, g):
        return v / math.sqrt(sum(float(t) * float(t) for t in v) / len(v) + hp["eps"]) * g

    def rot(vec, p):
        out = vec.copy()
        for j in range(n_rot // 2):
            th = p * hp["base"] ** (-2.0 * j / n_rot)
            i0, i1 = (j, j + n_rot // 2) if neox else (2 * j, 2 * j + 1)
            a, b = vec[i0], vec[i1]
            out[i0] = a * math.cos(th) - b * math.sin(th)
            out[i1] = a * math.sin(th) + b * math.cos(th)
        return out

    kc = [[] for _ in range(hp["n_layer"])]
    vc = [[] for _ in range(hp["n_layer"])]
    outw = W["token_embd.weight"] if hp["tied"] else W["output.weight"]
    logits = []
    for p, tok in enumerate(tokens):
        x = W["token_embd.weight"][tok].copy()
        for li in range(hp["n_layer"]):
            P = f"blk.{li}."
            n = rmsn(x, W[P + "attn_norm.weight"])
            q = W[P + "attn_q.weight"] @ n + W.get(P + "attn_q.bias", 0)
            k = W[P + "attn_k.weight"] @ n + W.get(P + "attn_k.bias", 0)
            v = W[P + "attn_v.weight"] @ n + W.get(P + "attn_v.bias", 0)
            q = np.concatenate([rot(q[h * D:(h + 1) * D], p) for h in range(H)])
            k = np.concatenate([rot(k[h * D:(h + 1) * D], p) for h in range(Hkv)])
            kc[li].append(k)
            vc[li].append(v)
            att = np.zeros(H * D)
            for h in range(H):
                g = h // (H // Hkv)
                qh = q[h * D:(h + 1) * D]
                s = [float(qh @ kk[g * D:(g + 1) * D]) / math.sqrt(D) for kk in kc[li]]
                m = max(s)
                e = [math.exp(t - m) for t in s]
                z = sum(e)
                for wgt, vv in zip(e, vc[li]):
                    att[h * D:(h + 1) * D] += wgt / z * vv[g * D:(g + 1) * D]
            hh = x + W[P + "attn_output.weight"] @ att
            n2 = rmsn(hh, W[P + "ffn_norm.weight"])
            gt = W[P + "ffn_gate.weight"] @ n2
            up = W[P + "ffn_up.weight"] @ n2
            x = hh + W[P + "ffn_down.weight"] @ (gt / (1 + np.exp(-gt)) * up)
        logits.append(outw @ rmsn(x, W["output_norm.weight"]))
    return np.array(logits)


class TestTinyModel(unittest.TestCase):
    TOKENS = [3, 17, 0, 49, 22, 22, 8, 31, 5, 40, 11]

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def check_variant(self, **kw):
        p = os.path.join(self.tmp.name, "m.gguf")
        W, hp = build_tiny(p, **kw)
        m = LlamaRef.from_file(p)
        self.assertEqual(m.hp.rope_mode, ROPE_NEOX if hp["arch"] == "qwen2" else ROPE_NORMAL)
        self.assertEqual(m.tied, hp["tied"])
        full = m.forward(self.TOKENS)
        self.assertEqual(full.shape, (len(self.TOKENS), hp["V"]))
        # causality: logits of position i only depend on tokens[:i+1]
        for i in range(len(self.TOKENS)):
            pre = m.forward(self.TOKENS[:i + 1])
            np.testing.assert_allclose(pre, full[:i + 1], rtol=0, atol=1e-12)
        # changing a later token does not change earlier logits, but does change later ones
        alt = list(self.TOKENS)
        alt[6] = (alt[6] + 1) % hp["V"]
        alt_l = m.forward(alt)
        np.testing.assert_allclose(alt_l[:6], full[:6], rtol=0, atol=1e-12)
        self.assertGreater(np.abs(alt_l[6:] - full[6:]).max(), 1e-3)
        # independent naive implementation
        np.testing.assert_allclose(naive_forward(W, hp, self.TOKENS), full, rtol=1e-10, atol=1e-10)
        return full

    def test_llama_gqa(self):
        self.check_variant(arch="llama")

    def test_qwen2_biases(self):
        self.check_variant(arch="qwen2", biases=True)

    def test_tied_partial_rope_keylength(self):
        self.check_variant(arch="llama", tied=True, key_length=12, n_rot=8, n_head=4, n_head_kv=1)

    def test_mha_and_quantised_weight(self):
        self.check_variant(arch="llama", n_head=4, n_head_kv=4, quant_q8=True)

    def test_rope_mode_matters(self):
        a = self.check_variant(arch="llama", seed=3)
        b = self.check_variant(arch="qwen2", seed=3)
        np.testing.assert_allclose(a[0], b[0], rtol=0, atol=1e-12)   # position 0: no rotation
        self.assertGreater(np.abs(a[1:] - b[1:]).max(), 1e-3)

    def test_tied_equals_explicit_copy(self):
        p1 = os.path.join(self.tmp.name, "tied.gguf")
        W, _ = build_tiny(p1, tied=True, seed=7)
        m1 = LlamaRef.from_file(p1)
        m2 = LlamaRef.from_file(p1)
        m2.output = W["token_embd.weight"].copy()
        np.testing.assert_array_equal(m1.forward(self.TOKENS), m2.forward(self.TOKENS))

    def test_make_golden_logits(self):
        p = os.path.join(self.tmp.name, "tiny-llama.gguf")
        gp = os.path.join(self.tmp.name, "tiny-llama.golden.gguf")
        build_tiny(p, arch="qwen2", biases=True)
        with redirect_stdout(io.StringIO()):
            make_golden.main(["--model", p, "--out", gp, "--case", "short=1,2,3",
                              "--case", "long=" + ",".join(map(str, self.TOKENS))])
        g = read_gguf(gp)
        self.assertEqual(g.metadata["golden.model"], "tiny-llama.gguf")
        self.assertEqual(g.metadata["golden.cases"], ["short", "long"])
        self.assertEqual(g.metadata["golden.case.long.tokens"], self.TOKENS)
        self.assertEqual(g.metadata["golden.case.long.tokens"].elem_type, VT.INT32)
        m = LlamaRef.from_file(p)
        for name, toks in [("short", [1, 2, 3]), ("long", self.TOKENS)]:
            ti = g.tensor(f"logits.{name}")
            self.assertEqual(ti.type_id, GGMLType.F32)
            self.assertEqual(ti.dims, (50, len(toks)))                  # [n_vocab, n_tokens]
            np.testing.assert_array_equal(g.tensor_f32(ti.name), m.forward(toks).astype(np.float32))


if __name__ == "__main__":
    unittest.main()
