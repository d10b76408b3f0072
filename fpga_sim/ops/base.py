"""The ``Op`` base class: attribute parsing, load-time validation, error context.

An op module declares *what* it accepts (inputs with their dtypes, attributes
with defaults and allowed values) and implements ``_run(self, *inputs, **attrs)``
with the arithmetic only. This class

* turns the node's attributes into keyword arguments, filling in defaults and
  refusing unknown attributes or disallowed values at load time;
* checks the input count, the dtypes, the "scalar" and "must be an initializer"
  constraints at load time wherever they are known, and the dtypes and scalars
  again at run time (cheap);
* calls the op's ``prepare`` hook once at load time for its own checks and for
  precomputing constants (e.g. centred integer weights);
* wraps every error raised by an op with the node's name and op type.

Ops signal a refusal by raising ``ValueError``; they never import the error
classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import onnx
from onnx import AttributeProto

from fpga_sim.errors import NodeExecutionError, UnsupportedNodeError

REQUIRED = object()
"""Default of an attribute that the node must set."""


_KINDS = {"int": AttributeProto.INT, "ints": AttributeProto.INTS, "str": AttributeProto.STRING}


@dataclass(frozen=True)
class Attr:
    """An attribute the op accepts: its ONNX type, default and, optionally, allowed values.

    ``kind`` is "int", "ints" (a tuple of ints once parsed) or "str".
    """

    kind: str
    default: Any = REQUIRED
    choices: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class Input:
    """An input the op accepts.

    ``scalar``: a 0-d or one-element 1-D tensor. ``constant``: must be an
    initializer (its value is needed at load time).
    """

    name: str
    dtypes: frozenset[np.dtype]
    optional: bool = False
    scalar: bool = False
    constant: bool = False


@dataclass(frozen=True)
class Known:
    """What is known at load time about one input of a node.

    ``value`` is set for initializers; ``dtype`` and ``shape`` when the graph
    declares or shape inference finds them (``shape`` entries may be ``None``
    for unknown dimensions).
    """

    dtype: np.dtype | None = None
    shape: tuple[int | None, ...] | None = None
    value: np.ndarray | None = None


def is_scalar_shape(shape: Sequence[int | None]) -> bool:
    """0-d, or 1-D with one element (what onnxruntime accepts as a scalar); None dims may be 1."""
    return len(shape) == 0 or (len(shape) == 1 and shape[0] in (1, None))


def _attribute_value(attr: AttributeProto) -> Any:
    if attr.ref_attr_name:
        raise ValueError(f"attribute {attr.name!r} refers to a function attribute")
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list):
        return tuple(v.decode("utf-8") if isinstance(v, bytes) else v for v in value)
    return value


class Op:
    """Base class of every simulated op. Subclasses set the class variables."""

    op_type: ClassVar[str]
    inputs: ClassVar[tuple[Input, ...]]
    attributes: ClassVar[Mapping[str, Attr]] = {}
    same_dtype: ClassVar[tuple[tuple[str, ...], ...]] = ()
    """Groups of input names; inputs of one group must share a dtype (when present)."""
    variadic: ClassVar[bool] = False
    """The last declared input may repeat (ONNX variadic, at least once): e.g. Concat's inputs."""
    reuses_input: ClassVar[int | None] = None
    """Index of the input whose buffer ``_run`` may write its result into, when the
    simulator passes that buffer as ``out=`` (it does so only for a tensor that no
    one reads afterwards and that shares memory with nothing else alive)."""

    def __init__(self, node: onnx.NodeProto, known: Sequence[Known | None], name: str) -> None:
        """Validate ``node`` against the declaration; raises UnsupportedNodeError.

        ``known[i]`` describes node input i (``None`` when the input is absent).
        """
        self.name = name
        try:
            self.attrs = self._parse_attributes(node)
            self._check_arity(node)
            self._check_known(known)
            padded = list(known) + [None] * (len(self.inputs) - len(known))
            self.prepare(padded, **self.attrs)
        except ValueError as exc:
            raise UnsupportedNodeError(name, self.op_type, str(exc)) from exc

    # -- load time -----------------------------------------------------------

    def _parse_attributes(self, node: onnx.NodeProto) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for attr in node.attribute:
            if attr.name not in self.attributes:
                allowed = ", ".join(sorted(self.attributes)) or "none"
                raise ValueError(f"unsupported attribute {attr.name!r} (supported: {allowed})")
            kind = self.attributes[attr.name].kind
            if attr.type != _KINDS[kind]:
                raise ValueError(f"attribute {attr.name!r} must be of type {kind}")
            values[attr.name] = _attribute_value(attr)
        for attr_name, spec in self.attributes.items():
            if attr_name not in values:
                if spec.default is REQUIRED:
                    raise ValueError(f"missing required attribute {attr_name!r}")
                values[attr_name] = spec.default
            elif spec.choices is not None and values[attr_name] not in spec.choices:
                raise ValueError(
                    f"attribute {attr_name}={values[attr_name]!r} is not supported "
                    f"(supported: {', '.join(repr(c) for c in spec.choices)})"
                )
        return values

    def _specs(self, count: int) -> tuple[Input, ...]:
        """The declaration of each of ``count`` inputs (a variadic last one repeated)."""
        if self.variadic and count > len(self.inputs):
            return self.inputs + (self.inputs[-1],) * (count - len(self.inputs))
        return self.inputs

    def _check_arity(self, node: onnx.NodeProto) -> None:
        given = list(node.input)
        if len(given) > len(self.inputs) and not self.variadic:
            raise ValueError(f"takes at most {len(self.inputs)} inputs, got {len(given)}")
        given += [""] * (len(self.inputs) - len(given))
        for spec, tensor in zip(self._specs(len(given)), given):
            if not tensor and not spec.optional:
                raise ValueError(f"required input {spec.name!r} is missing")
        if not node.output or not node.output[0]:
            raise ValueError("has no output")
        extra = [out for out in node.output[1:] if out]
        if extra:
            raise ValueError(f"only the first output is supported, got extra outputs {extra}")

    def _check_known(self, known: Sequence[Known | None]) -> None:
        seen: dict[str, np.dtype] = {}
        for spec, info in zip(self._specs(len(known)), known):
            if info is None:
                continue
            if spec.constant and info.value is None:
                raise ValueError(f"input {spec.name!r} must be an initializer")
            if info.dtype is not None:
                self._check_dtype(spec, info.dtype)
                self._check_repeat(seen, spec, info.dtype)
                seen[spec.name] = info.dtype
            if spec.scalar and info.shape is not None and not is_scalar_shape(info.shape):
                raise ValueError(f"input {spec.name!r} must be a scalar, got shape {list(info.shape)}")
        self._check_same_dtype(seen)

    def _check_dtype(self, spec: Input, dtype: np.dtype) -> None:
        if dtype not in spec.dtypes:
            allowed = ", ".join(sorted(d.name for d in spec.dtypes))
            raise ValueError(f"input {spec.name!r} has dtype {dtype}, supported: {allowed}")

    @staticmethod
    def _check_repeat(seen: Mapping[str, np.dtype], spec: Input, dtype: np.dtype) -> None:
        """A variadic input's occurrences share one dtype (ONNX's variadic inputs are homogeneous)."""
        if spec.name in seen and seen[spec.name] != dtype:
            raise ValueError(f"every input {spec.name!r} must have one dtype, got {seen[spec.name]} and {dtype}")

    def _check_same_dtype(self, seen: Mapping[str, np.dtype]) -> None:
        for group in self.same_dtype:
            dtypes = {name: seen[name] for name in group if name in seen}
            if len(set(dtypes.values())) > 1:
                listed = ", ".join(f"{k}: {v}" for k, v in dtypes.items())
                raise ValueError(f"inputs must share one dtype, got {listed}")

    def prepare(self, known: Sequence[Known | None], **attrs: Any) -> None:
        """Op-specific load-time checks and precomputation; raise ValueError to refuse."""

    # -- run time ------------------------------------------------------------

    def __call__(self, *inputs: np.ndarray | None, out: np.ndarray | None = None) -> np.ndarray:
        """Run the node on its inputs (``None`` for absent optional ones).

        ``out``: a dead buffer (input ``reuses_input``) the result may be written into.
        """
        attrs = self.attrs if out is None else {**self.attrs, "out": out}
        try:
            self._check_runtime(inputs)
            with np.errstate(all="ignore"):  # integer wrap-around and IEEE overflow are the semantics
                return np.asarray(self._run(*inputs, **attrs))
        except Exception as exc:  # every failure gets the node's name attached
            raise NodeExecutionError(self.name, self.op_type, str(exc) or type(exc).__name__) from exc

    def _check_runtime(self, inputs: Sequence[np.ndarray | None]) -> None:
        seen: dict[str, np.dtype] = {}
        for spec, value in zip(self._specs(len(inputs)), inputs):
            if value is None:
                continue
            self._check_dtype(spec, value.dtype)
            if spec.scalar and not is_scalar_shape(value.shape):
                raise ValueError(f"input {spec.name!r} must be a scalar, got shape {list(value.shape)}")
            self._check_repeat(seen, spec, value.dtype)
            seen[spec.name] = value.dtype
        self._check_same_dtype(seen)

    def _run(self, *inputs: np.ndarray | None, **attrs: Any) -> np.ndarray:
        raise NotImplementedError
