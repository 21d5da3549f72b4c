"""The forward stage on ONNX Runtime: a SAM-family model's exported encoder and decoders.

Same interface as :class:`~.engine.Sam2Engine` (``encode`` / ``decode``, ``input_size``,
``mask_input_size``, ``token``), so the prompter and the automatic segmenter run on
either. The sessions are created once per model with explicit thread settings; a call
only converts tensors and runs a session. Prompts are folded into SAM's point tokens
here (box corners -> labels 2 / 3, a padding token -> label -1), as the transformers
prompt encoder builds them.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from segmentkit.runtime import onnx
from segmentkit.weights import weights_identity

from .engine import Decoded, ImageFeatures
from .family import SamFamily
from .prompts import mask_only_points


class OrtSam2Engine:
    """Runs the exported graphs; created once per model, reused for every call."""

    def __init__(self, graphs: dict[str, Path], *, input_size: int, mask_input_size: tuple[int, int],
                 device: str = "cpu", intra_op_threads: int | None = None):
        self.device = torch.device("cpu")  # outputs come back as CPU tensors
        self.token = uuid.uuid4().hex
        self.input_size = int(input_size)
        self.mask_input_size = tuple(int(s) for s in mask_input_size)
        self.sessions = {name: onnx.session(path, device, intra_op_threads) for name, path in graphs.items()}
        self._no_mask = np.zeros((1, 1, *self.mask_input_size), dtype=np.float32)

    def encode(self, pixel_values: torch.Tensor, original_size: tuple[int, int]) -> ImageFeatures:
        """Run the exported vision encoder on (1, 3, S, S) pixel values."""
        feed = {"pixel_values": _numpy(pixel_values)}
        emb, hr0, hr1 = self.sessions["encoder"].run(None, feed)
        return ImageFeatures(torch.from_numpy(emb), (torch.from_numpy(hr0), torch.from_numpy(hr1)),
                             tuple(original_size), self.token)

    def decode(
        self,
        features: ImageFeatures,
        points: torch.Tensor | None,
        labels: torch.Tensor | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
        *,
        multimask: bool,
    ) -> Decoded:
        """Same contract as :meth:`Sam2Engine.decode`."""
        coords, tokens = point_tokens(points, labels, boxes, masks)
        feed = {
            "embedding": _numpy(features.embedding),
            "high_res_0": _numpy(features.high_res[0]),
            "high_res_1": _numpy(features.high_res[1]),
            "point_coords": coords,
            "point_labels": tokens,
            "mask_input": self._no_mask if masks is None else _numpy(masks),
            "has_mask_input": np.array([0.0 if masks is None else 1.0], dtype=np.float32),
        }
        session = self.sessions["decoder_multi" if multimask else "decoder_single"]
        low_res, iou = session.run(None, feed)
        return Decoded(torch.from_numpy(low_res), torch.from_numpy(iou))


def point_tokens(points: torch.Tensor | None, labels: torch.Tensor | None, boxes: torch.Tensor | None,
                 masks: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray]:
    """SAM's sparse prompt tokens (B, P, K, 2) float32 + (B, P, K) int64: points (labels 1 / 0),
    then box corners (labels 2 / 3), then one padding token (label -1)."""
    if points is None and boxes is None:
        points, labels = mask_only_points(masks)
    coords: list[torch.Tensor] = []
    tokens: list[torch.Tensor] = []
    if points is not None:
        coords.append(points.float())
        tokens.append(labels.to(torch.int64))
    if boxes is not None:
        coords.append(boxes.float().reshape(*boxes.shape[:2], 2, 2))
        tokens.append(torch.tensor([2, 3], dtype=torch.int64).expand(*boxes.shape[:2], 2))
    ref = coords[0]
    coords.append(torch.zeros(*ref.shape[:2], 1, 2))
    tokens.append(torch.full((*ref.shape[:2], 1), -1, dtype=torch.int64))
    return torch.cat(coords, dim=2).numpy(), np.ascontiguousarray(torch.cat(tokens, dim=2).numpy())


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().to("cpu", torch.float32).numpy())


def load_ort_engine(model_id: str, weights: Path, model: Any, *, family: SamFamily, device: str = "cpu",
                    intra_op_threads: int | None = None, opset: int | None = None) -> OrtSam2Engine:
    """The ONNX Runtime engine of a loaded fp32 image model, exported on first use into the cache
    by the family's exporter (``family.onnx_export``)."""
    onnx_export = family.load("onnx_export")

    opset = opset or onnx_export.DEFAULT_OPSET
    input_size = int(model.config.prompt_encoder_config.image_size)
    folder = onnx.export_dir(model_id, [onnx_export.FORMAT, weights_identity(weights), input_size, opset])
    graphs = onnx.ensure_exported(folder, onnx_export.GRAPHS,
                                  lambda staging: onnx_export.export_all(model, staging, opset))
    return OrtSam2Engine(graphs, input_size=input_size, mask_input_size=tuple(model.prompt_encoder.mask_input_size),
                         device=device, intra_op_threads=intra_op_threads)
