"""Just enough of the ONNX protobuf format to rewrite a model graph, without the ``onnx`` package.

Messages are read and written in the protobuf wire format. Only the fields a graph rewrite needs are
decoded (nodes, initializers, graph inputs/outputs, opset imports); everything else is kept byte for
byte. Errors raise :class:`RewriteError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["INT32", "MS_DOMAIN", "Attr", "Model", "Node", "RewriteError", "attr"]

_FLOAT, _UINT8, _INT8, _INT32, _INT64 = 1, 2, 3, 6, 7
_NP_OF = {_FLOAT: np.float32, _UINT8: np.uint8, _INT8: np.int8, _INT32: np.int32, _INT64: np.int64}
_CODE_OF = {np.dtype(v): k for k, v in _NP_OF.items()}
MS_DOMAIN = "com.microsoft"
INT32 = _INT32


class RewriteError(Exception):
    """The model does not have the expected shape; use it unchanged."""


# --------------------------------------------------------------------------- protobuf wire format

Field = tuple[int, int, Any]  # (field number, wire type, int | bytes)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _parse(buf: bytes) -> list[Field]:
    out: list[Field] = []
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _read_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = _read_varint(buf, pos)
            out.append((num, 0, val))
        elif wt == 2:
            n, pos = _read_varint(buf, pos)
            out.append((num, wt, buf[pos : pos + n]))
            pos += n
        elif wt in (1, 5):
            out.append((num, wt, buf[pos : pos + (n := 8 if wt == 1 else 4)]))
            pos += n
        else:
            raise RewriteError(f"unsupported protobuf wire type {wt}")
    return out


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _enc(num: int, wt: int, val: Any) -> bytes:
    key = _varint(num << 3 | wt)
    if wt == 0:
        return key + _varint(int(val))
    if wt == 2:
        data = val.encode() if isinstance(val, str) else bytes(val)
        return key + _varint(len(data)) + data
    return key + bytes(val)


def _ints(wt: int, val: Any) -> Iterator[int]:
    """A repeated int64 field, packed or not."""
    if wt == 0:
        yield val if val < 1 << 63 else val - (1 << 64)
        return
    pos = 0
    while pos < len(val):
        v, pos = _read_varint(val, pos)
        yield v if v < 1 << 63 else v - (1 << 64)


# --------------------------------------------------------------------------- ONNX messages


def _decode_tensor(buf: bytes) -> tuple[str, npt.NDArray[Any]]:
    dims: list[int] = []
    dtype, name, raw = 0, "", b""
    typed: list[Any] = []
    for num, wt, val in _parse(buf):
        if num == 1:
            dims.extend(_ints(wt, val))
        elif num == 2:
            dtype = val
        elif num == 8:
            name = val.decode()
        elif num == 9:
            raw = val
        elif num == 4:  # float_data (packed)
            typed.extend(struct.unpack(f"<{len(val) // 4}f", val) if wt == 2 else struct.unpack("<f", val))
        elif num in (5, 7):  # int32_data / int64_data
            typed.extend(_ints(wt, val))
        elif num in (13, 14):
            raise RewriteError("tensors with external data are not supported")
    if dtype not in _NP_OF:
        raise RewriteError(f"tensor {name!r} has unsupported data type {dtype}")
    np_type = _NP_OF[dtype]
    arr = np.frombuffer(raw, dtype=np_type).copy() if raw else np.array(typed, dtype=np_type)
    return name, arr.reshape(dims)


def _encode_tensor(name: str, arr: npt.NDArray[Any]) -> bytes:
    arr = np.ascontiguousarray(arr)
    code = _CODE_OF.get(arr.dtype)
    if code is None:
        raise RewriteError(f"cannot store dtype {arr.dtype}")
    parts = [_enc(1, 0, d) for d in arr.shape]
    parts += [_enc(2, 0, code), _enc(8, 2, name), _enc(9, 2, arr.astype(arr.dtype.newbyteorder("<")).tobytes())]
    return b"".join(parts)


Attr = int | float | list[int]


def attr(name: str, value: Attr) -> bytes:
    if isinstance(value, list):  # INTS
        return _enc(1, 2, name) + _enc(20, 0, 7) + b"".join(_enc(8, 0, v) for v in value)
    if isinstance(value, int):
        return _enc(1, 2, name) + _enc(20, 0, 2) + _enc(3, 0, value)  # AttributeProto.INT
    return _enc(1, 2, name) + _enc(20, 0, 1) + _enc(2, 5, struct.pack("<f", value))  # FLOAT


@dataclass
class Node:
    op: str
    inputs: list[str]
    outputs: list[str]
    name: str = ""
    domain: str = ""
    attrs: list[bytes] = field(default_factory=list)

    @classmethod
    def parse(cls, buf: bytes) -> Node:
        node = cls("", [], [])
        for num, _, val in _parse(buf):
            if num == 1:
                node.inputs.append(val.decode())
            elif num == 2:
                node.outputs.append(val.decode())
            elif num == 3:
                node.name = val.decode()
            elif num == 4:
                node.op = val.decode()
            elif num == 7:
                node.domain = val.decode()
            elif num == 5:
                node.attrs.append(val)
        return node

    def encode(self) -> bytes:
        parts = [_enc(1, 2, i) for i in self.inputs] + [_enc(2, 2, o) for o in self.outputs]
        parts += [_enc(3, 2, self.name), _enc(4, 2, self.op)]
        if self.domain:
            parts.append(_enc(7, 2, self.domain))
        parts += [_enc(5, 2, a) for a in self.attrs]
        return b"".join(parts)


class Model:
    """The parts of a ModelProto this rewrite touches; everything else is kept byte for byte."""

    def __init__(self, data: bytes) -> None:
        self.head: list[Field] = []
        self.graph_rest: list[Field] = []
        self.nodes: list[Node] = []
        self.init_raw: dict[str, bytes] = {}
        self.new_inits: dict[str, npt.NDArray[Any]] = {}
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self._cache: dict[str, npt.NDArray[Any]] = {}
        for num, wt, val in _parse(data):
            if num == 7:
                self._parse_graph(val)
            else:
                self.head.append((num, wt, val))

    def _parse_graph(self, buf: bytes) -> None:
        for num, wt, val in _parse(buf):
            if num == 1:
                self.nodes.append(Node.parse(val))
            elif num == 5:
                name = next((v.decode() for n, _, v in _parse(val) if n == 8), "")
                self.init_raw[name] = val
            elif num not in (10, 13):  # drop doc_string and value_info (which may go stale)
                if num in (11, 12):
                    vname = next(v.decode() for n, _, v in _parse(val) if n == 1)
                    (self.inputs if num == 11 else self.outputs).append(vname)
                self.graph_rest.append((num, wt, val))

    def const(self, name: str) -> npt.NDArray[Any] | None:
        if name in self.new_inits:
            return self.new_inits[name]
        if name not in self.init_raw:
            return None
        if name not in self._cache:
            self._cache[name] = _decode_tensor(self.init_raw[name])[1]
        return self._cache[name]

    def add_const(self, name: str, arr: npt.NDArray[Any]) -> str:
        self.new_inits[name] = arr
        return name

    def add_output(self, name: str) -> None:
        tensor_type = _enc(1, 2, _enc(1, 0, _FLOAT))  # TypeProto{tensor_type{elem_type=FLOAT}}
        self.graph_rest.append((12, 2, _enc(1, 2, name) + _enc(2, 2, tensor_type)))
        self.outputs.append(name)

    def serialize(self) -> bytes:
        used = {i for n in self.nodes for i in n.inputs}
        g = [_enc(1, 2, n.encode()) for n in self.nodes]
        g += [_enc(5, 2, raw) for name, raw in self.init_raw.items() if name in used and name not in self.new_inits]
        g += [_enc(5, 2, _encode_tensor(k, v)) for k, v in self.new_inits.items() if k in used]
        g += [_enc(num, wt, val) for num, wt, val in self.graph_rest]
        head = list(self.head)
        domains = {next((v.decode() for n, _, v in _parse(val) if n == 1), "") for num, _, val in head if num == 8}
        if MS_DOMAIN not in domains:
            head.append((8, 2, _enc(1, 2, MS_DOMAIN) + _enc(2, 0, 1)))
        return b"".join(_enc(num, wt, val) for num, wt, val in head) + _enc(7, 2, b"".join(g))
