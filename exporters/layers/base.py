"""What every integer-model layer shares: its name and inputs, its requantizer, and the
serialization driven by its dataclass fields.

A layer type is a dataclass subclass of :class:`Layer` (or :class:`SingleInput`) in its own
module of this package, registered in :data:`exporters.layers.LAYER_TYPES`. It answers, for
the backends, the questions whose answers used to be ``isinstance`` chains:

* ``output_shape(in_shapes)`` / ``output_grid(in_grids)`` — shape and grid inference;
  ``check(model)`` — its contract rules (a one-line :class:`ModelError` naming it);
* ``to_dict(model)`` / ``from_dict(d, arrays)`` — the ONNX metadata entry, generic over the
  fields: a field declared with :data:`INITIALIZER` is named ``<layer>.<field>`` (the array
  is an ONNX initializer the exporter writes), a :class:`Grid` / :class:`Requant` is its
  ``to_dict``, an array a list, a tuple a list;
* ``work(model)`` — MACs, BOPs, parameters and weight memory (:class:`Work`);
* class flags for the genuine categories: ``requantizes`` (writes its own grid, so a hidden
  one must be unsigned), ``accumulates`` (has a proven accumulator,
  :func:`exporters.layers.accumulator.accumulator_analysis`), ``is_free_view`` (changes no
  integer and no memory layout: backends alias its input).
"""

from __future__ import annotations

import typing
from dataclasses import MISSING, dataclass, fields

import numpy as np

from exporters.errors import ModelError
from exporters.grid import Grid
from exporters.requant import MAX_SHIFT, MULTIPLIER_BITS

INT32 = (-(1 << 31), (1 << 31) - 1)

#: ``field(metadata=INITIALIZER)``: the array is stored as the ONNX initializer ``<layer>.<field>``.
INITIALIZER = {"initializer": True}

#: ``channel_labels``: an output element that carries none of the tracked channels.
UNTRACKED = -1


def pair(v) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``[2, 1] -> (2, 1)`` (kernel, stride and padding fields)."""
    return (int(v), int(v)) if np.isscalar(v) else tuple(int(x) for x in v)


def positions(shape: tuple[int, ...]) -> int:
    """Output positions per channel of a tensor of ``shape``: ``H * W`` for ``(C, H, W)``, ``L`` for
    ``(C, L)``, 1 for ``(F,)``."""
    return int(np.prod(shape[1:], dtype=np.int64))


def check_multipliers(layer: str, m: np.ndarray) -> None:
    if ((m < 1) | (m >= 1 << MULTIPLIER_BITS)).any():
        raise ModelError(f"layer '{layer}': multipliers must lie in [1, 2^{MULTIPLIER_BITS}), got {m.tolist()}")


def check_shifts(layer: str, n: np.ndarray) -> None:
    if ((n < 0) | (n > MAX_SHIFT)).any():
        raise ModelError(f"layer '{layer}': shifts must lie in [0, {MAX_SHIFT}], got {n.tolist()}")


@dataclass(eq=False)
class Requant:
    """``y[c] = clamp(z + ((acc[c] * M[c] + 2^(n[c]-1)) >> n[c]), lo, hi)`` into grid ``out``.

    ``[lo, hi]`` is the grid's, raised to ``z`` by a fused ReLU and narrowed by a fused clamp
    (ReLU6, hardtanh: integer bounds ``[Q(a), Q(b)]``, :meth:`exporters.grid.Grid.clamp_bounds`)."""

    multiplier: np.ndarray
    shift: np.ndarray
    out: Grid
    relu: bool = False
    clamp: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self.multiplier = np.asarray(self.multiplier, dtype=np.int64).reshape(-1)
        self.shift = np.asarray(self.shift, dtype=np.int64).reshape(-1)
        self.clamp = as_clamp(self.clamp)

    @property
    def bounds(self) -> tuple[int, int]:
        return self.out.output_bounds(self.relu, self.clamp)

    def check(self, layer: str, channels: int) -> None:
        for what, arr in (("multiplier", self.multiplier), ("shift", self.shift)):
            if arr.shape != (channels,):
                raise ModelError(f"layer '{layer}': {what} has shape {arr.shape}, expected ({channels},)")
        check_multipliers(layer, self.multiplier)
        check_shifts(layer, self.shift)
        self.out.check_clamp(self.clamp, f"layer '{layer}'")

    def to_dict(self) -> dict:
        return {"multiplier": self.multiplier.tolist(), "shift": self.shift.tolist(),
                "out": self.out.to_dict(), "relu": self.relu, "clamp": _plain(self.clamp)}

    @classmethod
    def from_dict(cls, d: dict) -> "Requant":
        return cls(d["multiplier"], d["shift"], Grid.from_dict(d["out"]), bool(d["relu"]), d.get("clamp"))


def as_clamp(clamp) -> tuple[int, int] | None:
    """A fused clamp's integer bounds as a tuple (None: no clamp)."""
    return None if clamp is None else (int(clamp[0]), int(clamp[1]))


def narrow_clamp(current: tuple[int, int] | None, bounds: tuple[int, int]) -> tuple[int, int]:
    """A second fused clamp after a first one: the intersection (both contain the zero point)."""
    lo, hi = as_clamp(bounds)
    return (lo, hi) if current is None else (max(current[0], lo), min(current[1], hi))


@dataclass(frozen=True)
class Work:
    """One inference's (batch 1) cost figures of a layer, as ``report.json`` lists them
    (definitions: :mod:`exporters.stats`)."""

    macs: int = 0
    nonzero_macs: int = 0
    bops: int = 0
    nonzero_bops: int = 0
    params: int = 0
    weight_memory_bits: int = 0


def mac_count(output_positions: int, taps: int) -> int:
    """Multiply-accumulates of a layer: output positions per channel x taps summed over all channels."""
    return int(output_positions) * int(taps)


def bit_operations(macs: int, weight_bits: int, act_bits: int) -> int:
    """BOPs (Wang, Lu and Blankevoort's DJPQ measure): ``macs * weight_bits * act_bits``."""
    return int(macs) * int(weight_bits) * int(act_bits)


_CODECS = {Grid: Grid.from_dict, Requant: Requant.from_dict}


def _plain(value):
    """A field value as JSON-ready data."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Grid, Requant)):
        return value.to_dict()
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass(eq=False)
class Layer:
    """Base of every layer type. Subclasses list the fields naming their inputs in ``INPUT_FIELDS``
    (one name each), or set ``VARIADIC_INPUTS`` to the one tuple field naming all of them (Concat)."""

    name: str

    INPUT_FIELDS: typing.ClassVar[tuple[str, ...]] = ()
    VARIADIC_INPUTS: typing.ClassVar[str | None] = None
    requantizes: typing.ClassVar[bool] = False
    accumulates: typing.ClassVar[bool] = False
    is_free_view: typing.ClassVar[bool] = False

    @property
    def inputs(self) -> tuple[str, ...]:
        if self.VARIADIC_INPUTS:
            return tuple(getattr(self, self.VARIADIC_INPUTS))
        return tuple(getattr(self, f) for f in self.INPUT_FIELDS)

    @property
    def computes(self) -> bool:
        """Whether it computes anything: not the Input (quantized on the host) nor a free view.
        Such layers get a kernel, a cost and a row in the statistics."""
        return bool(self.inputs) and not self.is_free_view

    # -- inference and checks -------------------------------------------------------------
    def output_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        raise NotImplementedError(f"{type(self).__name__} has no shape rule")

    def output_grid(self, in_grids: list[Grid]) -> Grid:
        """Grid of this layer's output given its inputs' grids (pass-through by default)."""
        return in_grids[0]

    def check(self, model) -> None:
        """The contract rules beyond shapes (run by ``IntegerModel.validate``); none by default."""

    def window(self, model) -> tuple[int, ...] | None:
        """The window a layer slides or reduces over, ``(rows, columns)`` (``(k,)`` in 1-D); None if it has none."""
        return None

    def op_name(self, model) -> str:
        """The operator name the report's layer rows use: the type's (a 1-D window layer adds ``1d``)."""
        return type(self).__name__

    def work(self, model) -> Work:
        """MACs, BOPs, parameters and weight memory of one inference; nothing by default."""
        return Work()

    def channel_labels(self, model, labels: np.ndarray, position: int = 0) -> np.ndarray:
        """Which tracked channel each output element carries, given ``labels`` of the elements of
        input ``position``'s channels (channel pruning follows channels through a layer with it).
        A per-channel layer keeps them (the default); a layer mixing channels (a MAC layer)
        ends the trail instead. :data:`UNTRACKED` marks an element that carries none of them
        (a Concat's other inputs)."""
        return labels

    def fuse_relu(self) -> bool:
        """Fold a following ReLU into this layer's output clamp; False if it has no requantizer."""
        return False

    def fuse_clamp(self, bounds: tuple[int, int]) -> bool:
        """Narrow this layer's output clamp to the integer ``bounds`` of a following ReLU6 / hardtanh
        (``Grid.clamp_bounds`` on its output grid); False if it has no requantizer."""
        return False

    @property
    def output_clamp(self) -> tuple[int, int] | None:
        """The integer bounds of a fused clamp, or None."""
        return None

    # -- serialization (ONNX metadata) ----------------------------------------------------
    def _stored_fields(self):
        return [f for f in fields(self) if f.name not in ("name", self.VARIADIC_INPUTS, *self.INPUT_FIELDS)]

    def to_dict(self, model) -> dict:
        """The layer as JSON-ready data: type, name, inputs, then each field in declaration order."""
        d = {"type": type(self).__name__, "name": self.name, "inputs": list(self.inputs)}
        for f in self._stored_fields():
            d[f.name] = f"{self.name}.{f.name}" if f.metadata.get("initializer") else _plain(getattr(self, f.name))
        return d

    @classmethod
    def from_initializer(cls, field_name: str, array: np.ndarray) -> np.ndarray:
        """The field's value from its ONNX initializer (the exporter may store it reshaped)."""
        return array

    @classmethod
    def from_dict(cls, d: dict, arrays: dict[str, np.ndarray]) -> "Layer":
        """Inverse of :meth:`to_dict`; ``arrays`` are the ONNX initializers by name. A field
        missing from ``d`` takes its default (files written before the field existed)."""
        name = d["name"]
        if cls.VARIADIC_INPUTS:
            kwargs = {"name": name, cls.VARIADIC_INPUTS: tuple(d["inputs"])}
        else:
            kwargs = {"name": name, **dict(zip(cls.INPUT_FIELDS, d["inputs"]))}
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if f.name in kwargs:
                continue
            if f.name not in d:
                if f.default is MISSING and f.default_factory is MISSING:
                    raise ModelError(f"layer '{name}': {cls.__name__} field '{f.name}' is missing in Foldline metadata")
                continue
            value = d[f.name]
            if f.metadata.get("initializer"):
                value = cls.from_initializer(f.name, arrays[value])
            elif hints[f.name] in _CODECS:
                value = _CODECS[hints[f.name]](value)
            elif typing.get_origin(hints[f.name]) is tuple:
                value = tuple(value)
            kwargs[f.name] = value
        return cls(**kwargs)


@dataclass(eq=False)
class SingleInput(Layer):
    input: str

    INPUT_FIELDS: typing.ClassVar[tuple[str, ...]] = ("input",)
