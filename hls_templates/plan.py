"""From an :class:`~exporters.integer_model.IntegerModel` to a :class:`Design`: the buffers
(tensors as the hardware holds them), the kernel calls, and the dataflow plumbing.

Rules (written down in docs/hls.md):

* Tensors are pixel-major (HWC). A vector ``(F,)`` is ``(F, 1, 1)``; a free view
  (``layer.is_free_view``: a ``Flatten`` of a map) aliases its input's buffer and the ``Linear``
  after it reads the map in HWC order with its weight columns permuted
  (:func:`hls_templates.kernels.linear_kernel`).
* Layers that do not reach the model's output are left out (their names are reported).
* Every other layer but the Input is one call of its kernel, ``kernels.KERNELS[type(layer)]``;
  a Concat of ``k > 2`` inputs is first a chain of ``k - 1`` two-input ones (:func:`binary_concats`).
* Dataflow: a stream has one reader, so a tensor read by k layers is cloned k - 1 times; a
  clone's outputs get FIFOs as deep as the tensor, so a branch never stalls its sibling.
* Parallel: the top function is pipelined (everything unrolled) when every layer has reuse
  factor 1; otherwise it is a dataflow region of per-layer pipelines with II = reuse factor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from exporters import integer_model as im
from exporters.requant import MULTIPLIER_BITS
from hls_templates.config import HlsConfig
from hls_templates.cpp import render_struct
from hls_templates.errors import UnsupportedModelError
from hls_templates.kernels import KERNELS, Buffer, Kernel

_RESERVED = frozenset({"input", "output", "result", "foldline", "hls", "config", "main", "std"})
#: Type names the C and POSIX headers the C simulation includes already declare: a layer whose derived
#: ``<ident>_t`` would be one gets another identifier (a PTQ layer named after its node ``div`` made
#: ``div_t``, <stdlib.h>'s, and g++ refused the project).
_LIBRARY_TYPES = frozenset({
    "div_t", "ldiv_t", "lldiv_t", "size_t", "ssize_t", "ptrdiff_t", "max_align_t", "wchar_t", "wint_t", "wctype_t",
    "mbstate_t", "time_t", "clock_t", "clockid_t", "timer_t", "fpos_t", "off_t", "pid_t", "uid_t", "gid_t", "mode_t",
    "dev_t", "ino_t", "key_t", "id_t", "sig_atomic_t", "sigset_t", "va_list", "locale_t", "nlink_t", "blksize_t",
    "blkcnt_t", "useconds_t", "suseconds_t", "socklen_t", "fd_set", "intptr_t", "uintptr_t", "intmax_t",
    "uintmax_t", "float_t", "double_t", "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t",
    "uint32_t", "uint64_t"})


@dataclass
class StreamDecl:
    var: str
    pixel_t: str
    depth: int


@dataclass
class Design:
    model_name: str
    architecture: str
    top: str
    input: Buffer
    output: Buffer
    buffers: list[Buffer]
    kernels: list[Kernel]
    streams: list[StreamDecl] = field(default_factory=list)
    pipeline_top: bool = False
    skipped: list[str] = field(default_factory=list)

    @property
    def internal(self) -> list[Buffer]:
        return [b for b in self.buffers if b is not self.input and b is not self.output]


def _identifiers(names: list[str], top: str) -> dict[str, str]:
    """A distinct C++ identifier per layer name; every derived symbol distinct too."""
    taken = set(_RESERVED) | _LIBRARY_TYPES | {top}
    result = {}
    for name in names:
        base = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "layer"
        if base[0].isdigit() or base.lower() in _RESERVED or base == top:
            base = f"layer_{base}"
        ident = base
        while _derived(ident) & taken:
            ident += "_"
        taken |= _derived(ident)
        result[name] = ident
    return result


def _derived(ident: str) -> set[str]:
    return {ident, f"{ident}_t", f"{ident}_pixel_t", f"{ident}_out", f"{ident}_w", f"{ident}_b", f"{ident}_m",
            f"{ident}_n", f"config_{ident}"} | {f"{ident}_out_{i}" for i in range(8)}


def _layout(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(C, H, W)``; a 1-D map ``(C, L)`` is one row ``(C, 1, L)``, a vector ``(F, 1, 1)``."""
    return im.plane_shape(shape)


def binary_concats(model: im.IntegerModel) -> tuple[im.IntegerModel, dict[str, str]]:
    """``model`` with every Concat of ``k > 2`` inputs as a chain of ``k - 1`` two-input Concats (the
    kernel joins two), and which original layer each new one comes from.

    Part ``j`` joins the previous part and input ``j + 1``: all parts write the Concat's output grid,
    with its clamp, so part ``j`` requantizes the previous part by ``(M, n) = (2^15, 15)``, the
    identity on integers already inside ``[lo, hi]``; every input is requantized once, by its own
    ``(M_i, n_i)``, exactly as the Concat's rule says. The last part keeps the Concat's name."""
    if not any(isinstance(layer, im.Concat) and len(layer.sources) > 2 for layer in model.layers):
        return model, {}
    taken = {layer.name for layer in model.layers}
    layers, origin = [], {}
    one = (1 << (MULTIPLIER_BITS - 1), MULTIPLIER_BITS - 1)
    for layer in model.layers:
        if not (isinstance(layer, im.Concat) and len(layer.sources) > 2):
            layers.append(layer)
            continue
        rules = list(zip(layer.sources, layer.multipliers, layer.shifts))
        (src, m, n), rest = rules[0], rules[1:]
        for j, (src_j, m_j, n_j) in enumerate(rest, start=1):
            name = layer.name
            if j < len(rest):
                name = f"{layer.name}_part{j}"
                while name in taken:
                    name += "_"
                taken.add(name)
            layers.append(im.Concat(name, (src, src_j), (m, m_j), (n, n_j), layer.out, layer.relu, layer.clamp))
            origin[name] = layer.name
            (src, m, n) = (name, *one)
    lowered = im.IntegerModel(layers, name=model.name)
    lowered.validate()
    return lowered, origin


def plan(model: im.IntegerModel, config: HlsConfig) -> Design:
    model.validate()
    config.check_layers([layer.name for layer in model.layers])
    model, origin = binary_concats(model)
    arch = config.resolve_architecture(model.input.shape)
    live = im.live_layers(model)
    skipped = [layer.name for layer in model.layers if layer not in live]
    idents = _identifiers([layer.name for layer in live if layer is not model.input], config.top)

    buffers: dict[str, Buffer] = {}
    real: list[Buffer] = []
    for layer in live:
        if layer.is_free_view:
            buffers[layer.name] = buffers[layer.input]
            continue
        grid = model.grid(layer.name)
        ident = "input" if layer is model.input else idents[layer.name]
        var = "input" if layer is model.input else f"{ident}_out"
        buf = Buffer(layer.name, ident, var, grid.bits, grid.signed, *_layout(model.shape(layer.name)), grid)
        buffers[layer.name] = buf
        real.append(buf)
    inp, out = real[0], buffers[model.output.name]
    if out is inp:
        raise UnsupportedModelError(f"model '{model.name}' computes nothing: its output is its input")
    out.ident, out.var = "result", "output"

    computing = [layer for layer in live if layer.computes]  # the Input is the port; free views alias
    slots: dict[str, list[tuple[str, int]]] = {b.tensor: [] for b in real}
    for layer in computing:
        for pos, src in enumerate(layer.inputs):
            slots[buffers[src].tensor].append((layer.name, pos))
    if slots[out.tensor]:
        raise UnsupportedModelError(f"layer '{out.tensor}' is both the output and read by another layer")

    design = Design(model.name, arch, config.top, inp, out, real, [], skipped=skipped)
    if arch == "dataflow":
        reads, clones = _plumbing(design, slots)
    else:
        reads, clones = {slot: b.var for b in real for slot in slots[b.tensor]}, {}
    design.kernels.extend(clones.get(inp.tensor, []))
    for layer in computing:
        kind = KERNELS.get(type(layer))
        if kind is None:
            raise UnsupportedModelError(f"layer '{layer.name}': no HLS kernel for {type(layer).__name__}")
        ins = [buffers[src] for src in layer.inputs]
        args = [reads[(layer.name, pos)] for pos in range(len(ins))] + [buffers[layer.name].var]
        design.kernels.append(kind(model, layer, idents[layer.name], ins, buffers[layer.name], args, arch,
                                   config.reuse_for(origin.get(layer.name, layer.name))))
        design.kernels.extend(clones.get(layer.name, []))
    design.pipeline_top = arch == "parallel" and max(config.reuse_for(origin.get(layer.name, layer.name))
                                                     for layer in computing) == 1
    return design


def _plumbing(design: Design, slots: dict) -> tuple[dict, dict]:
    """Dataflow: declare the streams; a tensor read k > 1 times goes through k - 1 clones.

    Returns the stream each (layer, input position) reads, and the clone kernels per tensor
    (placed right after the kernel producing that tensor).
    """
    reads, clones = {}, {}
    for buf in design.buffers:
        if buf is not design.input and buf is not design.output:
            design.streams.append(StreamDecl(buf.var, buf.pixel_t, 2))
        readers = slots[buf.tensor]
        source = buf.var
        for i, slot in enumerate(readers[:-1]):
            branch, rest = f"{buf.var}_{2 * i}", f"{buf.var}_{2 * i + 1}"
            for var in (branch, rest):
                design.streams.append(StreamDecl(var, buf.pixel_t, buf.pixels))
            clones.setdefault(buf.tensor, []).append(Kernel(
                buf.tensor, f"{buf.tensor}: clone {i + 1} of {len(readers) - 1} (read by {len(readers)} layers)",
                "foldline::clone_stream", [buf.pixel_t, str(buf.pixels)], [source, branch, rest]))
            reads[slot] = branch
            source = rest
        if readers:
            reads[readers[-1]] = source
    return reads, clones


def render_config(kernel: Kernel) -> str:
    return f"// {kernel.summary}\n" + render_struct(kernel.config_name, kernel.config)
