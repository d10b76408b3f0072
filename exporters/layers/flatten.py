"""Flatten: ``(C, H, W) -> (C*H*W,)`` in C-major order, as torch.flatten and ONNX Flatten do.

A free view: it changes no integer, and the HLS backend aliases its input's buffer (the
Linear reading it permutes its weight columns instead, ``hls_templates.kernels``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exporters.layers.base import SingleInput, positions


@dataclass(eq=False)
class Flatten(SingleInput):
    """(C, H, W) -> (C*H*W,) in C-major order, as torch.flatten and ONNX Flatten do."""

    is_free_view = True

    def output_shape(self, in_shapes):
        return (int(np.prod(in_shapes[0])),)

    def channel_labels(self, model, labels, position=0):
        return np.repeat(labels, positions(model.shape(self.input)))  # channel c: H*W features in a row
