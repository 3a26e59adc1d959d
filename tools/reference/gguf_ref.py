#!/usr/bin/python3
"""Independent reference GGUF reader / writer and ggml dequantisation, in numpy.

This module is deliberately self-contained (standard library + numpy only) and
written from the public format descriptions, not from the C++ code of this
project, so that goldens produced with it are an independent check of the C++.

Sources the layouts and formulas were re-derived from (public):
  * GGUF container:   ggml-org/ggml  docs/gguf.md
  * block layouts:    ggml  src/ggml-common.h   (block_q4_0 ... block_q6_K)
  * dequantisation:   ggml  src/ggml-quants.c   (dequantize_row_* functions)

Conventions used throughout
---------------------------
* A GGUF tensor has dims [ne0, ne1, ...] (ne0 = fastest varying).  As a numpy
  array it therefore has shape (..., ne1, ne0), i.e. reversed dims.
* All multi-byte values are little endian.
* dequantize() reproduces ggml's float32 arithmetic step by step (same
  operation order, each intermediate rounded to float32).  For all supported
  types every product in the formulas (fp16 scale x small integers) is exact
  in float32, so the only rounding is the final add/subtract: the result is
  the correctly rounded value of the exact formula, and any evaluation order
  or FMA contraction gives identical bits (test_ref.py checks this against a
  float64 evaluation).  Dequant goldens can therefore be compared bit-exactly.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

# ----------------------------------------------------------------------------
# Constants
# ----------------------------------------------------------------------------

GGUF_MAGIC = b"GGUF"          # bytes 0..3 of the file ("GGUF" = 0x46554747 LE)
GGUF_DEFAULT_ALIGNMENT = 32   # used when general.alignment is absent
GGML_MAX_DIMS = 4             # ggml tensors have at most 4 dims


class VT:
    """GGUF metadata value types (gguf_type)."""
    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


# Fixed-size scalar value types: struct format character and size in bytes.
_SCALAR_FMT: Dict[int, str] = {
    VT.UINT8: "B", VT.INT8: "b", VT.UINT16: "H", VT.INT16: "h",
    VT.UINT32: "I", VT.INT32: "i", VT.FLOAT32: "f", VT.BOOL: "?",
    VT.UINT64: "Q", VT.INT64: "q", VT.FLOAT64: "d",
}
_SCALAR_NP: Dict[int, str] = {
    VT.UINT8: "<u1", VT.INT8: "<i1", VT.UINT16: "<u2", VT.INT16: "<i2",
    VT.UINT32: "<u4", VT.INT32: "<i4", VT.FLOAT32: "<f4", VT.BOOL: "<u1",
    VT.UINT64: "<u8", VT.INT64: "<i8", VT.FLOAT64: "<f8",
}
VT_NAMES = {v: k for k, v in vars(VT).items() if not k.startswith("_")}


class GGMLType:
    """ggml tensor type ids (enum ggml_type) used in the tensor table."""
    F32 = 0
    F16 = 1
    Q4_0 = 2
    Q4_1 = 3
    Q5_0 = 6
    Q5_1 = 7
    Q8_0 = 8
    Q8_1 = 9
    Q2_K = 10
    Q3_K = 11
    Q4_K = 12
    Q5_K = 13
    Q6_K = 14
    Q8_K = 15
    I8 = 24
    I16 = 25
    I32 = 26
    I64 = 27
    F64 = 28
    BF16 = 30


GGML_TYPE_NAMES = {v: k for k, v in vars(GGMLType).items() if not k.startswith("_")}

QK_K = 256  # super-block size of the K-quants

# type id -> (elements per block, bytes per block).  Byte counts derived from
# the block structs in ggml-common.h (ggml_half = 2 bytes):
GGML_BLOCK: Dict[int, Tuple[int, int]] = {
    GGMLType.F32: (1, 4),
    GGMLType.F16: (1, 2),
    GGMLType.BF16: (1, 2),
    GGMLType.Q4_0: (32, 2 + 16),                 # d, qs[16]
    GGMLType.Q4_1: (32, 2 + 2 + 16),             # d, m, qs[16]
    GGMLType.Q5_0: (32, 2 + 4 + 16),             # d, qh[4], qs[16]
    GGMLType.Q5_1: (32, 2 + 2 + 4 + 16),         # d, m, qh[4], qs[16]
    GGMLType.Q8_0: (32, 2 + 32),                 # d, qs[32] (int8)
    GGMLType.Q8_1: (32, 2 + 2 + 32),             # d, s, qs[32]
    GGMLType.Q2_K: (QK_K, 16 + 64 + 2 + 2),      # scales[16], qs[64], d, dmin      = 84
    GGMLType.Q3_K: (QK_K, 32 + 64 + 12 + 2),     # hmask[32], qs[64], scales[12], d = 110
    GGMLType.Q4_K: (QK_K, 2 + 2 + 12 + 128),     # d, dmin, scales[12], qs[128]     = 144
    GGMLType.Q5_K: (QK_K, 2 + 2 + 12 + 32 + 128),  # d, dmin, scales[12], qh[32], qs[128] = 176
    GGMLType.Q6_K: (QK_K, 128 + 64 + 16 + 2),    # ql[128], qh[64], scales[16] int8, d = 210
    GGMLType.Q8_K: (QK_K, 4 + 256 + 32),         # d (f32), qs[256], bsums[16] int16
    GGMLType.I8: (1, 1),
    GGMLType.I16: (1, 2),
    GGMLType.I32: (1, 4),
    GGMLType.I64: (1, 8),
    GGMLType.F64: (1, 8),
}


def tensor_nbytes(type_id: int, n_elements: int) -> int:
    """Bytes occupied by n_elements of the given ggml type (must be whole blocks)."""
    if type_id not in GGML_BLOCK:
        raise ValueError(f"unknown/unsupported ggml type id {type_id}")
    blk, size = GGML_BLOCK[type_id]
    if n_elements % blk != 0:
        raise ValueError(f"{n_elements} elements is not a multiple of the block size {blk} "
                         f"of type {GGML_TYPE_NAMES.get(type_id, type_id)}")
    return n_elements // blk * size


def align_up(x: int, a: int) -> int:
    return (x + a - 1) // a * a


# ----------------------------------------------------------------------------
# Metadata values
# ----------------------------------------------------------------------------

class GGUFArray(list):
    """A metadata array: a Python list that remembers its GGUF element type.

    Nested arrays are GGUFArray elements of a GGUFArray with elem_type ARRAY
    (each inner array carries its own element type)."""

    def __init__(self, elem_type: int, values: Iterable[Any] = ()):
        super().__init__(values)
        self.elem_type = elem_type

    def __repr__(self) -> str:
        return f"GGUFArray({VT_NAMES.get(self.elem_type, self.elem_type)}, {list.__repr__(self)})"


@dataclass
class TensorInfo:
    name: str
    dims: Tuple[int, ...]       # GGUF order: (ne0, ne1, ...)
    type_id: int
    offset: int                 # relative to the start of the tensor data section
    data: Optional[memoryview] = None   # raw bytes (set by the reader)

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.dims:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return tensor_nbytes(self.type_id, self.n_elements)

    @property
    def np_shape(self) -> Tuple[int, ...]:
        """numpy shape = reversed GGUF dims, e.g. [ne0, ne1] -> (ne1, ne0)."""
        return tuple(reversed(self.dims))


# ----------------------------------------------------------------------------
# Reader
# ----------------------------------------------------------------------------

class _Cursor:
    """Bounds-checked little-endian reader over a bytes-like buffer."""

    def __init__(self, buf, pos: int = 0):
        self.buf = buf
        self.pos = pos
        self.n = len(buf)

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > self.n:
            raise ValueError(f"GGUF truncated: need {n} bytes at offset {self.pos}, file has {self.n}")
        mv = memoryview(self.buf)[self.pos:self.pos + n]
        self.pos += n
        return mv

    def unpack(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self.take(size))[0]

    def u32(self) -> int:
        return self.unpack("I")

    def u64(self) -> int:
        return self.unpack("Q")

    def string(self) -> str:
        n = self.u64()
        # GGUF strings are UTF-8, not NUL-terminated.  surrogateescape keeps any
        # invalid byte sequence round-trippable instead of failing.
        return bytes(self.take(n)).decode("utf-8", errors="surrogateescape")

    def value(self, vtype: int, depth: int = 0):
        if vtype in _SCALAR_FMT:
            v = self.unpack(_SCALAR_FMT[vtype])
            return bool(v) if vtype == VT.BOOL else v
        if vtype == VT.STRING:
            return self.string()
        if vtype == VT.ARRAY:
            if depth > 16:
                raise ValueError("GGUF metadata arrays nested too deeply")
            elem_type = self.u32()
            count = self.u64()
            if elem_type in _SCALAR_NP:
                # fixed-size elements: read them in one go
                itemsize = np.dtype(_SCALAR_NP[elem_type]).itemsize
                if count * itemsize > self.n - self.pos:
                    raise ValueError("GGUF truncated inside a metadata array")
                arr = np.frombuffer(self.take(count * itemsize), dtype=_SCALAR_NP[elem_type])
                vals = [bool(x) for x in arr] if elem_type == VT.BOOL else arr.tolist()
                return GGUFArray(elem_type, vals)
            if elem_type in (VT.STRING, VT.ARRAY):
                # every element needs at least 8 bytes (a length/count field)
                if count * 8 > self.n - self.pos:
                    raise ValueError("GGUF truncated inside a metadata array")
                return GGUFArray(elem_type, (self.value(elem_type, depth + 1) for _ in range(count)))
            raise ValueError(f"unknown GGUF array element type {elem_type}")
        raise ValueError(f"unknown GGUF metadata value type {vtype}")


class GGUFFile:
    """A parsed GGUF file.

    Attributes:
      version         2 or 3
      metadata        dict key -> value (int/float/bool/str or GGUFArray)
      metadata_types  dict key -> GGUF value type id of the value
      tensors         list of TensorInfo in file order (each has .data)
      alignment       general.alignment or 32
      data_offset     absolute file offset of the tensor data section
    """

    def __init__(self, path: str):
        self.path = path
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise ValueError("empty file")
            self._buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self._parse()

    def _parse(self) -> None:
        c = _Cursor(self._buf)
        magic = bytes(c.take(4))
        if magic != GGUF_MAGIC:
            raise ValueError(f"not a GGUF file (magic {magic!r})")
        self.version = c.u32()
        if self.version not in (2, 3):
            # v1 used 32-bit counts/lengths; big-endian files show up as a huge version.
            raise ValueError(f"unsupported GGUF version {self.version} (need 2 or 3, little endian)")
        n_tensors = c.u64()
        n_kv = c.u64()

        self.metadata: Dict[str, Any] = {}
        self.metadata_types: Dict[str, int] = {}
        for _ in range(n_kv):
            key = c.string()
            vtype = c.u32()
            val = c.value(vtype)
            if key in self.metadata:
                raise ValueError(f"duplicate metadata key {key!r}")
            self.metadata[key] = val
            self.metadata_types[key] = vtype

        self.alignment = GGUF_DEFAULT_ALIGNMENT
        if "general.alignment" in self.metadata:
            a = self.metadata["general.alignment"]
            if self.metadata_types["general.alignment"] != VT.UINT32 or a <= 0 or (a & (a - 1)):
                raise ValueError(f"bad general.alignment {a!r}")
            self.alignment = a

        self.tensors: List[TensorInfo] = []
        self.tensor_by_name: Dict[str, TensorInfo] = {}
        for _ in range(n_tensors):
            name = c.string()
            n_dims = c.u32()
            if n_dims > GGML_MAX_DIMS:
                raise ValueError(f"tensor {name!r}: {n_dims} dims > {GGML_MAX_DIMS}")
            dims = tuple(c.u64() for _ in range(n_dims))
            type_id = c.u32()
            offset = c.u64()
            if name in self.tensor_by_name:
                raise ValueError(f"duplicate tensor name {name!r}")
            ti = TensorInfo(name, dims, type_id, offset)
            self.tensors.append(ti)
            self.tensor_by_name[name] = ti

        # Tensor data starts at the next multiple of the alignment.
        self.data_offset = align_up(c.pos, self.alignment)
        for ti in self.tensors:
            if ti.offset % self.alignment != 0:
                raise ValueError(f"tensor {ti.name!r}: offset {ti.offset} not aligned to {self.alignment}")
            start = self.data_offset + ti.offset
            if ti.type_id in GGML_BLOCK:
                end = start + ti.nbytes
                if end > len(self._buf):
                    raise ValueError(f"tensor {ti.name!r}: data [{start}, {end}) past end of file ({len(self._buf)})")
                ti.data = memoryview(self._buf)[start:end]

    # -- convenience -------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    def tensor(self, name: str) -> TensorInfo:
        return self.tensor_by_name[name]

    def tensor_f32(self, name: str) -> np.ndarray:
        """Dequantised tensor as float32 numpy array of shape reversed(dims)."""
        ti = self.tensor_by_name[name]
        return dequantize(ti.type_id, ti.data, ti.n_elements).reshape(ti.np_shape)


def read_gguf(path: str) -> GGUFFile:
    return GGUFFile(path)


# ----------------------------------------------------------------------------
# Writer (GGUF v3)
# ----------------------------------------------------------------------------

def _infer_vtype(value: Any) -> int:
    if isinstance(value, bool):
        return VT.BOOL
    if isinstance(value, (int, np.integer)):
        return VT.INT32 if -2**31 <= int(value) < 2**31 else VT.INT64
    if isinstance(value, (float, np.floating)):
        return VT.FLOAT32
    if isinstance(value, str):
        return VT.STRING
    if isinstance(value, (list, tuple, GGUFArray)):
        return VT.ARRAY
    raise TypeError(f"cannot infer a GGUF type for {value!r}")


def _encode_string(s: str) -> bytes:
    b = s.encode("utf-8", errors="surrogateescape")
    return struct.pack("<Q", len(b)) + b


def _encode_value(vtype: int, value: Any, elem_type: Optional[int] = None) -> bytes:
    """Encode a metadata value (without its type tag)."""
    if vtype in _SCALAR_FMT:
        if vtype == VT.BOOL:
            return struct.pack("<B", 1 if value else 0)
        return struct.pack("<" + _SCALAR_FMT[vtype], value)
    if vtype == VT.STRING:
        return _encode_string(value)
    if vtype == VT.ARRAY:
        if elem_type is None:
            elem_type = getattr(value, "elem_type", None)
        if elem_type is None:
            elem_type = _infer_vtype(value[0]) if len(value) else VT.INT32
        out = [struct.pack("<IQ", elem_type, len(value))]
        for v in value:
            out.append(_encode_value(elem_type, v))   # nested arrays carry their own elem_type
        return b"".join(out)
    raise ValueError(f"unknown GGUF value type {vtype}")


class GGUFWriter:
    """Minimal GGUF v3 writer.

    Metadata: any GGUF value type (u8..f64, bool, string, arrays incl. nested).
    Tensors:  f32 arrays (add_tensor_f32), or raw pre-encoded bytes of any ggml
              type (add_tensor_raw, e.g. hand-built quantised blocks in tests).
    """

    def __init__(self, alignment: int = GGUF_DEFAULT_ALIGNMENT):
        self.kv: List[Tuple[str, int, Any, Optional[int]]] = []   # key, vtype, value, elem_type
        self.tensors: List[Tuple[str, Tuple[int, ...], int, bytes]] = []
        self.alignment = alignment
        if alignment != GGUF_DEFAULT_ALIGNMENT:
            # a non-default alignment must be recorded so that readers use it
            self.add("general.alignment", alignment, VT.UINT32)

    # -- metadata ----------------------------------------------------------

    def add(self, key: str, value: Any, vtype: Optional[int] = None, elem_type: Optional[int] = None) -> None:
        if any(k == key for k, _, _, _ in self.kv):
            raise ValueError(f"duplicate key {key!r}")
        if vtype is None:
            vtype = _infer_vtype(value)
        self.kv.append((key, vtype, value, elem_type))

    def add_u32(self, key: str, v: int) -> None:
        self.add(key, int(v), VT.UINT32)

    def add_i32(self, key: str, v: int) -> None:
        self.add(key, int(v), VT.INT32)

    def add_f32(self, key: str, v: float) -> None:
        self.add(key, float(v), VT.FLOAT32)

    def add_string(self, key: str, v: str) -> None:
        self.add(key, v, VT.STRING)

    def add_array_i32(self, key: str, vals: Sequence[int]) -> None:
        self.add(key, [int(v) for v in vals], VT.ARRAY, VT.INT32)

    def add_array_string(self, key: str, vals: Sequence[str]) -> None:
        self.add(key, list(vals), VT.ARRAY, VT.STRING)

    # -- tensors -----------------------------------------------------------

    def add_tensor_f32(self, name: str, arr: np.ndarray, dims: Optional[Sequence[int]] = None) -> None:
        """Add a float32 tensor.  dims default to reversed(arr.shape) (GGUF order)."""
        a = np.ascontiguousarray(arr, dtype="<f4")
        if dims is None:
            dims = tuple(reversed(a.shape)) if a.ndim else (1,)
        dims = tuple(int(d) for d in dims)
        if int(np.prod(dims)) != a.size:
            raise ValueError(f"tensor {name!r}: dims {dims} do not match {a.size} elements")
        self.add_tensor_raw(name, GGMLType.F32, dims, a.tobytes())

    def add_tensor_raw(self, name: str, type_id: int, dims: Sequence[int], raw: bytes) -> None:
        dims = tuple(int(d) for d in dims)
        if not 1 <= len(dims) <= GGML_MAX_DIMS:
            raise ValueError(f"tensor {name!r}: bad number of dims {len(dims)}")
        n = int(np.prod(dims))
        if len(raw) != tensor_nbytes(type_id, n):
            raise ValueError(f"tensor {name!r}: {len(raw)} bytes, expected {tensor_nbytes(type_id, n)}")
        if any(t[0] == name for t in self.tensors):
            raise ValueError(f"duplicate tensor {name!r}")
        self.tensors.append((name, dims, type_id, bytes(raw)))

    # -- output ------------------------------------------------------------

    def to_bytes(self) -> bytes:
        out = bytearray()
        out += GGUF_MAGIC
        out += struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))
        for key, vtype, value, elem_type in self.kv:
            out += _encode_string(key)
            out += struct.pack("<I", vtype)
            out += _encode_value(vtype, value, elem_type)
        # tensor table; each tensor's data is aligned within the data section
        offset = 0
        offsets = []
        for name, dims, type_id, raw in self.tensors:
            offset = align_up(offset, self.alignment)
            offsets.append(offset)
            out += _encode_string(name)
            out += struct.pack("<I", len(dims))
            out += struct.pack(f"<{len(dims)}Q", *dims)
            out += struct.pack("<IQ", type_id, offset)
            offset += len(raw)
        # padding (zeros) up to the data section, then the data
        out += b"\0" * (align_up(len(out), self.alignment) - len(out))
        base = len(out)
        for (name, dims, type_id, raw), off in zip(self.tensors, offsets):
            out += b"\0" * (base + off - len(out))
            out += raw
        # pad the end too (as ggml does), so every tensor is followed by padding
        out += b"\0" * (align_up(len(out), self.alignment) - len(out))
        return bytes(out)

    def write(self, path: str) -> None:
        data = self.to_bytes()
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)


# ----------------------------------------------------------------------------
# Dequantisation (ggml-quants.c semantics, float32 arithmetic)
# ----------------------------------------------------------------------------

F32 = np.float32


def _f16(blocks: np.ndarray, off: int) -> np.ndarray:
    """fp16 field at byte offset `off` of each block -> float32, shape (nb, 1).
    ggml's fp16->fp32 conversion is exact, as is numpy's."""
    return np.ascontiguousarray(blocks[:, off:off + 2]).view("<f2").astype(F32)


def _blocks(raw, type_id: int, n_elements: int) -> np.ndarray:
    """Raw bytes -> uint8 array of shape (n_blocks, bytes_per_block)."""
    blk, size = GGML_BLOCK[type_id]
    nbytes = tensor_nbytes(type_id, n_elements)
    buf = np.frombuffer(raw, dtype=np.uint8)
    if buf.size < nbytes:
        raise ValueError(f"need {nbytes} bytes for {n_elements} elements of "
                         f"{GGML_TYPE_NAMES[type_id]}, got {buf.size}")
    return buf[:nbytes].reshape(n_elements // blk, size)


def _get_scale_min_k4(scales: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Q4_K/Q5_K: unpack 8 six-bit scales and 8 six-bit mins from 12 bytes.

    scales: (nb, 12) uint8  ->  sc, mn: (nb, 8) uint8
      j < 4 : sc = q[j]   & 63                      mn = q[j+4] & 63
      j >= 4: sc = (q[j+4] & 0xF) | (q[j-4] >> 6) << 4
              mn = (q[j+4] >>  4) | (q[j]   >> 6) << 4
    """
    q = scales
    sc = np.empty((q.shape[0], 8), dtype=np.uint8)
    mn = np.empty((q.shape[0], 8), dtype=np.uint8)
    sc[:, 0:4] = q[:, 0:4] & 63
    mn[:, 0:4] = q[:, 4:8] & 63
    sc[:, 4:8] = (q[:, 8:12] & 0xF) | ((q[:, 0:4] >> 6) << 4)
    mn[:, 4:8] = (q[:, 8:12] >> 4) | ((q[:, 4:8] >> 6) << 4)
    return sc, mn


def _dq_q4_0(b: np.ndarray) -> np.ndarray:
    # block: d (f16) | qs[16]; element j = low nibble of qs[j], element j+16 = high nibble
    d = _f16(b, 0)                                   # (nb, 1)
    qs = b[:, 2:18]                                  # (nb, 16)
    lo = ((qs & 0xF).astype(np.int8) - 8).astype(F32)
    hi = ((qs >> 4).astype(np.int8) - 8).astype(F32)
    return np.concatenate([lo * d, hi * d], axis=1)  # (nb, 32)


def _dq_q4_1(b: np.ndarray) -> np.ndarray:
    # block: d (f16) | m (f16) | qs[16];  y = q*d + m
    d, m = _f16(b, 0), _f16(b, 2)
    qs = b[:, 4:20]
    lo = (qs & 0xF).astype(F32)
    hi = (qs >> 4).astype(F32)
    return np.concatenate([lo * d + m, hi * d + m], axis=1)


def _q5_high_bits(qh_bytes: np.ndarray) -> np.ndarray:
    """qh[4] as a little-endian u32; bit j is the 5th bit of element j (0..31).
    Returns (nb, 32) uint8 with values 0 or 16."""
    qh = np.ascontiguousarray(qh_bytes).view("<u4")          # (nb, 1)
    bits = (qh >> np.arange(32, dtype=np.uint32)) & 1         # (nb, 32)
    return (bits << 4).astype(np.uint8)


def _dq_q5_0(b: np.ndarray) -> np.ndarray:
    # block: d (f16) | qh[4] | qs[16];  q = (nibble | bit<<4) - 16;  y = q*d
    d = _f16(b, 0)
    h = _q5_high_bits(b[:, 2:6])                    # (nb, 32)
    qs = b[:, 6:22]
    lo = ((qs & 0xF) | h[:, :16]).astype(np.int16) - 16
    hi = ((qs >> 4) | h[:, 16:]).astype(np.int16) - 16
    return np.concatenate([lo.astype(F32) * d, hi.astype(F32) * d], axis=1)


def _dq_q5_1(b: np.ndarray) -> np.ndarray:
    # block: d (f16) | m (f16) | qh[4] | qs[16];  q = nibble | bit<<4;  y = q*d + m
    d, m = _f16(b, 0), _f16(b, 2)
    h = _q5_high_bits(b[:, 4:8])
    qs = b[:, 8:24]
    lo = ((qs & 0xF) | h[:, :16]).astype(F32)
    hi = ((qs >> 4) | h[:, 16:]).astype(F32)
    return np.concatenate([lo * d + m, hi * d + m], axis=1)


def _dq_q8_0(b: np.ndarray) -> np.ndarray:
    # block: d (f16) | qs[32] int8;  y = q*d
    d = _f16(b, 0)
    q = np.ascontiguousarray(b[:, 2:34]).view(np.int8).astype(F32)
    return q * d


def _dq_q2_k(b: np.ndarray) -> np.ndarray:
    """Q2_K, 84 bytes: scales[16] | qs[64] | d (f16) | dmin (f16).

    Element index within the super-block: y = 128*h + 32*j + k
      (h = half 0..1, j = 2-bit plane 0..3, k = 0..31)
      q     = (qs[32*h + k] >> 2*j) & 3
      sc    = scales[8*h + 2*j + k//16]   (low nibble = scale, high nibble = min)
      value = (d*(sc & 0xF)) * q - (dmin*(sc >> 4))
    """
    nb = b.shape[0]
    scales = b[:, 0:16].reshape(nb, 2, 4, 2)                 # [h, j, k//16]
    qs = b[:, 16:80].reshape(nb, 2, 1, 32)                   # [h, -, k]
    d, dmin = _f16(b, 80), _f16(b, 82)                       # (nb, 1)
    shift = (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1)
    q = ((qs >> shift) & 3).astype(F32)                      # (nb, 2, 4, 32)
    dl = d[:, :, None, None] * (scales & 0xF).astype(F32)    # (nb, 2, 4, 2)
    ml = dmin[:, :, None, None] * (scales >> 4).astype(F32)
    q = q.reshape(nb, 2, 4, 2, 16)
    y = dl[..., None] * q - ml[..., None]
    return y.reshape(nb, QK_K)


def _q3_k_scales(s: np.ndarray) -> np.ndarray:
    """Q3_K: 16 six-bit scales from 12 bytes, returned as signed (value - 32).

    scale j: low 4 bits  = s[j] & 0xF (j < 8)  or  s[j-8] >> 4 (j >= 8)
             high 2 bits = (s[8 + j%4] >> (2*(j//4))) & 3
    s: (nb, 12) uint8 -> (nb, 16) int16
    """
    j = np.arange(16)
    low = np.where(j < 8, s[:, j % 8] & 0xF, s[:, j % 8] >> 4)
    high = (s[:, 8 + j % 4] >> (2 * (j // 4)).astype(np.uint8)) & 3
    return (low | (high << 4)).astype(np.int16) - 32


def _dq_q3_k(b: np.ndarray) -> np.ndarray:
    """Q3_K, 110 bytes: hmask[32] | qs[64] | scales[12] | d (f16).

    y = 128*h + 32*j + k (h 0..1, j 0..3, k 0..31):
      low2  = (qs[32*h + k] >> 2*j) & 3
      hbit  = (hmask[k] >> (4*h + j)) & 1        (bit set => no offset)
      q     = low2 - (0 if hbit else 4)           (range -4..3)
      s     = scale[8*h + 2*j + k//16] - 32
      value = (d * s) * q
    """
    nb = b.shape[0]
    hmask = b[:, 0:32].reshape(nb, 1, 1, 32)
    qs = b[:, 32:96].reshape(nb, 2, 1, 32)
    sc = _q3_k_scales(b[:, 96:108]).reshape(nb, 2, 4, 2)     # [h, j, k//16]
    d = _f16(b, 108)
    j = np.arange(4, dtype=np.uint8).reshape(1, 1, 4, 1)
    h = np.arange(2, dtype=np.uint8).reshape(1, 2, 1, 1)
    low2 = ((qs >> (2 * j)) & 3).astype(np.int16)            # (nb, 2, 4, 32)
    hbit = (hmask >> (4 * h + j)) & 1
    q = (low2 - np.where(hbit != 0, 0, 4)).astype(F32)
    dl = d[:, :, None, None] * sc.astype(F32)                # (nb, 2, 4, 2)
    y = dl[..., None] * q.reshape(nb, 2, 4, 2, 16)
    return y.reshape(nb, QK_K)


def _dq_q4_k(b: np.ndarray) -> np.ndarray:
    """Q4_K, 144 bytes: d | dmin | scales[12] | qs[128].

    y = 64*g + 32*p + l (g 0..3, p 0..1 nibble, l 0..31):
      q     = (qs[32*g + l] >> 4*p) & 0xF
      value = (d*sc[2g+p]) * q - (dmin*mn[2g+p])
    """
    nb = b.shape[0]
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, mn = _get_scale_min_k4(b[:, 4:16])                   # (nb, 8)
    qs = b[:, 16:144].reshape(nb, 4, 1, 32)
    p = np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
    q = ((qs >> p) & 0xF).astype(F32)                        # (nb, 4, 2, 32)
    d1 = (d * sc.astype(F32)).reshape(nb, 4, 2, 1)
    m1 = (dmin * mn.astype(F32)).reshape(nb, 4, 2, 1)
    return (d1 * q - m1).reshape(nb, QK_K)


def _dq_q5_k(b: np.ndarray) -> np.ndarray:
    """Q5_K, 176 bytes: d | dmin | scales[12] | qh[32] | qs[128].

    y = 64*g + 32*p + l:
      q     = ((qs[32*g + l] >> 4*p) & 0xF) + 16 * ((qh[l] >> (2*g + p)) & 1)
      value = (d*sc[2g+p]) * q - (dmin*mn[2g+p])
    """
    nb = b.shape[0]
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, mn = _get_scale_min_k4(b[:, 4:16])
    qh = b[:, 16:48].reshape(nb, 1, 1, 32)
    qs = b[:, 48:176].reshape(nb, 4, 1, 32)
    p = np.array([0, 1], dtype=np.uint8).reshape(1, 1, 2, 1)
    g = np.arange(4, dtype=np.uint8).reshape(1, 4, 1, 1)
    low = (qs >> (4 * p)) & 0xF
    high = (qh >> (2 * g + p)) & 1
    q = (low + 16 * high).astype(F32)                        # (nb, 4, 2, 32)
    d1 = (d * sc.astype(F32)).reshape(nb, 4, 2, 1)
    m1 = (dmin * mn.astype(F32)).reshape(nb, 4, 2, 1)
    return (d1 * q - m1).reshape(nb, QK_K)


def _dq_q6_k(b: np.ndarray) -> np.ndarray:
    """Q6_K, 210 bytes: ql[128] | qh[64] | scales[16] (int8) | d (f16).

    y = 128*h + 32*t + l (h 0..1, t 0..3, l 0..31):
      low4  = ql[64*h + 32*(t%2) + l], low nibble if t < 2 else high nibble
      high2 = (qh[32*h + l] >> 2*t) & 3
      q     = (low4 | high2 << 4) - 32                  (range -32..31)
      value = (d * scales[8*h + 2*t + l//16]) * q
    """
    nb = b.shape[0]
    ql = b[:, 0:128].reshape(nb, 2, 2, 32)                   # [h, t%2, l]
    qh = b[:, 128:192].reshape(nb, 2, 1, 32)                 # [h, -, l]
    sc = np.ascontiguousarray(b[:, 192:208]).view(np.int8).reshape(nb, 2, 4, 2)  # [h, t, l//16]
    d = _f16(b, 208)
    low4 = np.concatenate([ql & 0xF, ql >> 4], axis=2)       # (nb, 2, 4, 32): t = 0,1,2,3
    t = np.arange(4, dtype=np.uint8).reshape(1, 1, 4, 1)
    high2 = (qh >> (2 * t)) & 3
    q = ((low4 | (high2 << 4)).astype(np.int16) - 32).astype(F32)
    dl = d[:, :, None, None] * sc.astype(F32)                # (nb, 2, 4, 2)
    y = dl[..., None] * q.reshape(nb, 2, 4, 2, 16)
    return y.reshape(nb, QK_K)


_DEQUANT = {
    GGMLType.Q4_0: _dq_q4_0,
    GGMLType.Q4_1: _dq_q4_1,
    GGMLType.Q5_0: _dq_q5_0,
    GGMLType.Q5_1: _dq_q5_1,
    GGMLType.Q8_0: _dq_q8_0,
    GGMLType.Q2_K: _dq_q2_k,
    GGMLType.Q3_K: _dq_q3_k,
    GGMLType.Q4_K: _dq_q4_k,
    GGMLType.Q5_K: _dq_q5_k,
    GGMLType.Q6_K: _dq_q6_k,
}

SUPPORTED_DEQUANT_TYPES = (GGMLType.F32, GGMLType.F16, GGMLType.BF16) + tuple(_DEQUANT)


def dequantize(type_id: int, raw_bytes, n_elements: int) -> np.ndarray:
    """Decode n_elements values of ggml type `type_id` from raw_bytes.

    Returns a flat float32 numpy array (length n_elements), bit-for-bit what
    ggml's dequantize_row_* computes (modulo FMA contraction, see module doc).
    """
    n_elements = int(n_elements)
    if type_id == GGMLType.F32:
        return np.frombuffer(raw_bytes, dtype="<f4", count=n_elements).astype(F32)
    if type_id == GGMLType.F16:
        return np.frombuffer(raw_bytes, dtype="<f2", count=n_elements).astype(F32)
    if type_id == GGMLType.BF16:
        # bf16 is the top half of an IEEE float32: f32 bits = bf16 bits << 16 (exact)
        u = np.frombuffer(raw_bytes, dtype="<u2", count=n_elements).astype(np.uint32) << 16
        return u.view(F32)
    if type_id not in _DEQUANT:
        raise ValueError(f"dequantize: unsupported ggml type {GGML_TYPE_NAMES.get(type_id, type_id)}")
    out = _DEQUANT[type_id](_blocks(raw_bytes, type_id, n_elements))
    assert out.dtype == F32, out.dtype
    return out.reshape(-1)


def fp32_to_fp16_bytes(x: float) -> bytes:
    """Helper for tests/tools: IEEE half (round to nearest even) as 2 LE bytes."""
    return np.array([x], dtype="<f2").tobytes()


__all__ = [
    "VT", "GGMLType", "GGML_TYPE_NAMES", "GGML_BLOCK", "QK_K", "GGUFArray", "TensorInfo",
    "GGUFFile", "read_gguf", "GGUFWriter", "dequantize", "tensor_nbytes",
    "SUPPORTED_DEQUANT_TYPES", "fp32_to_fp16_bytes", "align_up",
]
