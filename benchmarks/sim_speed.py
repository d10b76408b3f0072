"""Simulator vs onnxruntime speed on a small integer CNN, batch 1000.

The model is built with onnx.helper in the exporter's pattern: the float input
is quantized to int8 by QuantizeLinear, then three 3x3 convolutions (1->16->32->32,
padding 1, int8 weights, uint8 activations), each

    ConvInteger -> Add(int32 bias) -> Cast(int64) -> Mul(M) -> Add(2^(n-1) + offset)
    -> Cast(uint64) -> BitShift RIGHT(n) -> Cast(int64) -> Add(z_y - offset>>n)
    -> Clip(lo, hi) -> Cast(uint8)

i.e. y = clamp(z_y + ((acc * M + 2^(n-1)) >> n), lo, hi) with an arithmetic
shift made from a logical one by a positive offset (the integer contract).

Usage: python benchmarks/sim_speed.py [--batch 1000] [--repeat 3]
Prints both times and, last, ``ratio sim/onnxruntime: X.XX``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OFFSET_LOG2 = 61
"""acc * M + 2^(n-1) + 2^61 is >= 0 and < 2^63 for |acc| < 2^31, M < 2^16 (no wrap)."""


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def _requant_constants(scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """16-bit M[c] in [2^15, 2^16) and shift n[c] with M * 2^-n ~= scale[c]."""
    shift = np.floor(15 - np.log2(scale)).astype(np.int64)
    multiplier = np.round(scale * 2.0**shift).astype(np.int64)
    return multiplier, shift


def conv_block(prefix: str, x: str, weight: np.ndarray, bias: np.ndarray, x_zp: np.ndarray,
               scale: np.ndarray, y_zp: int, relu: bool) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """Nodes and initializers of one requantized convolution; returns its uint8 output name."""
    channels = weight.shape[0]
    multiplier, shift = _requant_constants(scale)
    per_channel = (channels, 1, 1)
    inits = [
        _const(f"{prefix}_w", weight),
        _const(f"{prefix}_xzp", x_zp),
        _const(f"{prefix}_bias", bias.astype(np.int32).reshape(per_channel)),
        _const(f"{prefix}_M", multiplier.reshape(per_channel)),
        _const(f"{prefix}_rnd", (np.left_shift(1, shift - 1) + 2**OFFSET_LOG2).reshape(per_channel)),
        _const(f"{prefix}_n", shift.astype(np.uint64).reshape(per_channel)),
        _const(f"{prefix}_zp", (y_zp - np.right_shift(2**OFFSET_LOG2, shift)).reshape(per_channel)),
        _const(f"{prefix}_lo", np.array(y_zp if relu else 0, np.int64)),
        _const(f"{prefix}_hi", np.array(255, np.int64)),
    ]
    t = lambda s: f"{prefix}_{s}"  # noqa: E731 - tensor names of this block
    nodes = [
        helper.make_node("ConvInteger", [x, t("w"), t("xzp")], [t("acc")], name=t("conv"),
                         pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Add", [t("acc"), t("bias")], [t("acc_b")], name=t("bias_add")),
        helper.make_node("Cast", [t("acc_b")], [t("acc64")], name=t("to_i64"), to=TensorProto.INT64),
        helper.make_node("Mul", [t("acc64"), t("M")], [t("prod")], name=t("mul_M")),
        helper.make_node("Add", [t("prod"), t("rnd")], [t("biased")], name=t("add_round")),
        helper.make_node("Cast", [t("biased")], [t("biased_u")], name=t("to_u64"), to=TensorProto.UINT64),
        helper.make_node("BitShift", [t("biased_u"), t("n")], [t("shifted_u")], name=t("shift"),
                         direction="RIGHT"),
        helper.make_node("Cast", [t("shifted_u")], [t("shifted")], name=t("to_i64b"), to=TensorProto.INT64),
        helper.make_node("Add", [t("shifted"), t("zp")], [t("with_zp")], name=t("add_zp")),
        helper.make_node("Clip", [t("with_zp"), t("lo"), t("hi")], [t("clipped")], name=t("clip")),
        helper.make_node("Cast", [t("clipped")], [t("out")], name=t("to_u8"), to=TensorProto.UINT8),
    ]
    return nodes, inits, t("out")


def build_cnn(seed: int = 0, channels: tuple[int, ...] = (1, 16, 32, 32)) -> onnx.ModelProto:
    """The benchmark model: float32 [N, 1, 28, 28] -> uint8 [N, channels[-1], 28, 28]."""
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("QuantizeLinear", ["image", "in_scale", "in_zp"], ["x0"], name="quantize_input")]
    inits = [_const("in_scale", np.array(1 / 64, np.float32)), _const("in_zp", np.array(0, np.int8))]
    x, x_zp = "x0", np.array(0, np.int8)
    for layer, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:]), start=1):
        weight = rng.integers(-127, 128, size=(c_out, c_in, 3, 3), dtype=np.int8)
        weight[0, 0, 0, 0] = -128 if layer == 2 else weight[0, 0, 0, 0]  # an extreme value
        taps = c_in * 9
        bias = rng.integers(-(2**12), 2**12, size=c_out)
        spread = np.sqrt(taps) * 73.0 * (70.0 if layer == 1 else 40.0)
        scale = rng.uniform(0.5, 1.5, size=c_out) * 255.0 / (4.0 * spread)
        y_zp = int(rng.integers(0, 40))
        block, block_inits, x = conv_block(f"l{layer}", x, weight, bias, x_zp, scale, y_zp, relu=True)
        nodes += block
        inits += block_inits
        x_zp = np.array(y_zp, np.uint8)
    graph = helper.make_graph(
        nodes, "foldline_bench_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info(x, TensorProto.UINT8, ["N", channels[-1], 28, 28])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def best_time(fn, repeat: int) -> tuple[float, object]:
    """Warm-up call, then the best wall time of ``repeat`` calls (and the last result)."""
    result = fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> int:
    import onnxruntime

    from fpga_sim import Simulator

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    model = build_cnn()
    images = np.random.default_rng(1).normal(0.0, 0.6, size=(args.batch, 1, 28, 28)).astype(np.float32)
    feeds = {"image": images}
    simulator = Simulator(model)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

    t_sim, (sim_out,) = best_time(lambda: simulator.run(None, feeds), args.repeat)
    t_ort, (ort_out,) = best_time(lambda: session.run(None, feeds), args.repeat)
    equal = sim_out.dtype == ort_out.dtype and np.array_equal(sim_out, ort_out)
    print(f"batch {args.batch}, output {ort_out.dtype} {list(ort_out.shape)}, "
          f"distinct values {len(np.unique(ort_out))}")
    print(f"outputs equal: {equal} ({int((sim_out == ort_out).sum())}/{ort_out.size} elements)")
    print(f"simulator:   {t_sim:.3f} s (best of {args.repeat})")
    print(f"onnxruntime: {t_ort:.3f} s (best of {args.repeat})")
    print(f"ratio sim/onnxruntime: {t_sim / t_ort:.2f}")
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
