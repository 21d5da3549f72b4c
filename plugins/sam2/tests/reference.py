"""Reference implementations taken from transformers itself, for parity tests.

transformers' ``Sam2ImageProcessor`` module imports torchvision at the top, which this
project does not depend on. Its mask-generation helpers are plain torch, so they are read
from the installed transformers source and compiled on their own (nothing is copied into
this repository): stability score, mask -> box, crop-edge test, crop boxes, point grid,
padding, RLE. ``Sam2Processor._normalize_coordinates`` (no torchvision) is used as is.
"""

from __future__ import annotations

import ast
import functools
import inspect
import math
from copy import deepcopy
from itertools import product
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

_FUNCTIONS = (
    "_compute_stability_score", "_batched_mask_to_box", "_is_box_near_crop_edge", "_pad_masks",
    "_generate_per_layer_crops", "_build_point_grid", "_mask_to_rle", "_rle_to_mask",
)
_METHODS = ("post_process_masks", "filter_masks")


@functools.cache
def processor_functions() -> SimpleNamespace:
    """The torch-only functions of ``transformers.models.sam2.image_processing_sam2``."""
    import transformers.models.sam2 as sam2_pkg

    path = sam2_pkg.__path__[0] + "/image_processing_sam2.py"
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    nodes = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in _FUNCTIONS]
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Sam2ImageProcessor"):
        nodes += [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name in _METHODS]
    found = {n.name for n in nodes}
    missing = set(_FUNCTIONS + _METHODS) - found
    assert not missing, f"transformers' image_processing_sam2 no longer defines {missing}"
    namespace = {"torch": torch, "F": F, "np": np, "math": math, "product": product, "deepcopy": deepcopy,
                 "Any": object, "Optional": lambda t: t, "Union": None}
    module = ast.Module(body=nodes, type_ignores=[])
    for node in nodes:
        node.decorator_list = []
        node.returns = None
        for arg in node.args.args + node.args.kwonlyargs:
            arg.annotation = None
    exec(compile(module, path, "exec"), namespace)
    return SimpleNamespace(**{name: namespace[name] for name in found})


def normalize_coordinates(coords: torch.Tensor, original_hw: tuple[int, int], target: int, *, box: bool = False):
    """``Sam2Processor._normalize_coordinates`` (does not touch ``self``)."""
    from transformers import Sam2Processor

    assert "self.image_processor" not in inspect.getsource(Sam2Processor._normalize_coordinates)
    return Sam2Processor._normalize_coordinates(None, target, coords, original_hw, is_bounding_box=box)


def post_process(low_res: torch.Tensor, original_hw: tuple[int, int]) -> torch.Tensor:
    """``Sam2ImageProcessor.post_process_masks`` without binarising: logits at image size."""
    return processor_functions().post_process_masks(None, [low_res], [original_hw], binarize=False)[0]


def greedy_nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> list[int]:
    """Textbook greedy NMS (one box at a time), torchvision's IoU formula."""
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))  # stable for ties
    kept: list[int] = []
    for i in order:
        ok = True
        for j in kept:
            a, b = boxes[i].tolist(), boxes[j].tolist()
            iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            inter = iw * ih
            union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
            if union > 0 and inter / union > threshold:
                ok = False
                break
        if ok:
            kept.append(i)
    return kept
