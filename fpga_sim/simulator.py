"""The Simulator: runs a validated graph with numpy, mirroring onnxruntime's session API."""

from __future__ import annotations

import os
from typing import Iterable, Mapping, Sequence

import numpy as np
import onnx

from fpga_sim.errors import FeedError, SimulatorError
from fpga_sim.graph import Graph, Node, TensorInfo, build_graph, load_model


class Simulator:
    """Bit-accurate integer reference execution of an ONNX model.

    ``Simulator(path_or_model)`` loads and validates the whole model (every
    node, attribute and, where stated, dtype and shape); errors derive from
    :class:`fpga_sim.SimulatorError`.

    Tensors are treated as immutable: an output may be a view of a feed or of
    another tensor (Identity, Reshape, same-width integer Cast).

    Attributes: ``graph`` (the validated :class:`fpga_sim.graph.Graph`) and
    ``label`` (the model's path, or ``"<model>"``, for messages).
    """

    def __init__(self, model: str | os.PathLike | onnx.ModelProto) -> None:
        proto, self.label = load_model(model)
        self.graph: Graph = build_graph(proto)

    # -- interface -------------------------------------------------------------

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The nodes in the order they run (topological)."""
        return self.graph.nodes

    def get_inputs(self) -> list[TensorInfo]:
        """The inputs to feed (initializers excluded), as name/dtype/shape."""
        return list(self.graph.inputs)

    def get_outputs(self) -> list[TensorInfo]:
        """The graph outputs, as name/dtype/shape."""
        return list(self.graph.outputs)

    # -- execution ---------------------------------------------------------------

    def run(self, output_names: Sequence[str] | None, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Compute ``output_names`` (all graph outputs when None), like InferenceSession.run.

        Any tensor of the graph may be requested. Only the nodes needed are run,
        and every intermediate is released right after its last consumer.
        """
        names = [o.name for o in self.graph.outputs] if output_names is None else list(output_names)
        env = self._environment(feeds)
        producers = {out: node for node in self.graph.nodes for out in node.outputs if out}
        for name in names:
            if name not in env and name not in producers:
                raise SimulatorError(f"unknown output {name!r}")
        schedule = self._needed_nodes(names, producers)
        last_use = self._last_uses(schedule, keep=set(names) | set(feeds))
        foreign = [*feeds.values(), *self.graph.initializers.values()]
        for step, node in enumerate(schedule):
            dead = last_use.get(step, ())
            self._execute(node, env, self._dead_buffer(node, dead, env, foreign))
            for tensor in dead:
                env.pop(tensor, None)
        return [env[name] for name in names]

    def trace(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every node output (intermediates and graph outputs), in topological order.

        Feeds and initializers are not included (they are the caller's and the
        model's); nothing is released, so memory grows with the graph.
        """
        env = self._environment(feeds)
        traced: dict[str, np.ndarray] = {}
        for node in self.graph.nodes:
            self._execute(node, env)
            traced.update((out, env[out]) for out in node.outputs if out)
        return traced

    # -- internals -------------------------------------------------------------

    def _environment(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        check_feeds(self.graph.inputs, feeds)
        env = dict(self.graph.initializers)
        env.update(feeds)
        return env

    @staticmethod
    def _execute(node: Node, env: dict[str, np.ndarray], out: np.ndarray | None = None) -> None:
        result = node.op(*(env[name] if name else None for name in node.inputs), out=out)
        env[node.outputs[0]] = result

    @staticmethod
    def _dead_buffer(node: Node, dead: Sequence[str], env: Mapping[str, np.ndarray],
                     foreign: Sequence[np.ndarray]) -> np.ndarray | None:
        """The buffer of input ``reuses_input`` if nothing can observe it being overwritten.

        It must die at this node (``dead`` never holds feeds, initializers or
        requested outputs), be writeable, and share memory with no other tensor
        still in ``env`` and with no feed or initializer (views are common:
        Reshape, Identity, same-width Cast).
        """
        index = node.op.reuses_input
        if index is None or node.inputs[index] not in dead:
            return None
        name = node.inputs[index]
        buffer = env[name]
        if not buffer.flags.writeable:
            return None
        others = [value for key, value in env.items() if key != name]
        if any(np.may_share_memory(buffer, other) for other in [*others, *foreign]):
            return None
        return buffer

    def _needed_nodes(self, names: Iterable[str], producers: Mapping[str, Node]) -> list[Node]:
        needed: set[int] = set()
        stack = [producers[n] for n in names if n in producers]
        while stack:
            node = stack.pop()
            if id(node) in needed:
                continue
            needed.add(id(node))
            stack.extend(producers[i] for i in node.inputs if i in producers)
        return [node for node in self.graph.nodes if id(node) in needed]

    def _last_uses(self, schedule: Sequence[Node], keep: set[str]) -> dict[int, list[str]]:
        """Step after which each releasable tensor is dead (outputs never read: at once)."""
        last: dict[str, int] = {}
        for step, node in enumerate(schedule):
            for tensor in node.inputs:
                if tensor:
                    last[tensor] = step
            for tensor in node.outputs:
                if tensor:
                    last.setdefault(tensor, step)
        protected = keep | set(self.graph.initializers)
        plan: dict[int, list[str]] = {}
        for tensor, step in last.items():
            if tensor not in protected:
                plan.setdefault(step, []).append(tensor)
        return plan


def check_feeds(inputs: Sequence[TensorInfo], feeds: Mapping[str, np.ndarray]) -> None:
    """Raise FeedError (one line) for a missing, extra, mistyped or misshaped feed."""
    if not isinstance(feeds, Mapping):
        raise FeedError(f"feeds must be a mapping of input name to array, got {type(feeds).__name__}")
    expected = {i.name: i for i in inputs}
    for name in feeds:
        if name not in expected:
            raise FeedError(f"unexpected feed {name!r}; the model's inputs are: {', '.join(expected) or 'none'}")
    for name, info in expected.items():
        if name not in feeds:
            raise FeedError(f"missing feed for input {name!r} (expected {info.describe()})")
        value = feeds[name]
        if not isinstance(value, np.ndarray):
            raise FeedError(f"input {name!r}: expected a numpy array, got {type(value).__name__}")
        if value.dtype != info.dtype:
            raise FeedError(f"input {name!r}: expected dtype {info.dtype}, got {value.dtype}")
        if info.shape is None:
            continue
        mismatch = value.ndim != len(info.shape) or any(
            isinstance(d, int) and d != got for d, got in zip(info.shape, value.shape)
        )
        if mismatch:
            expected_shape = info.describe().split(" ", 1)[1]
            raise FeedError(f"input {name!r}: expected shape {expected_shape}, got {list(value.shape)}")
