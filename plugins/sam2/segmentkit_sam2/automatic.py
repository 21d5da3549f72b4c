"""Automatic mask generation ("segment everything") with a SAM-family model, task ``automatic``.

SAM 2's generator, batched and vectorised: a point grid per crop is decoded in batches
of ``points_per_batch``; masks are filtered by predicted IoU *before* being upsampled
(only survivors reach image resolution, in bounded chunks), then by stability score and
crop edges, and stored as COCO RLE straight away so memory stays bounded for large grids.
Box NMS runs per crop and across crops; optional small-region cleanup follows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from pycocotools import mask as coco_mask
from segmentkit.cards import ModelCard
from segmentkit.errors import TaskError
from segmentkit.io.image import load_image
from segmentkit.roles import ImageInput
from segmentkit.types import Masks, Segmentation

from .boxes import masks_to_boxes_inclusive, nms
from .engine import ImageFeatures
from .grid import crop_boxes, near_crop_edge, point_grid
from .options import Sam2AutomaticOptions
from .postprocess import above, stability_score
from .preprocess import map_points, upscale_masks
from .prompter import Sam2Prompter
from .regions import remove_small_regions

log = logging.getLogger(__name__)

_CHUNK_BYTES = 64 * 2**20  # float32 image-size logits upsampled at once
CropBox = tuple[int, int, int, int]


@dataclass
class Candidates:
    """Masks kept so far, compact: COCO RLE plus per-mask fields (image coordinates)."""

    rles: list[dict]
    boxes: torch.Tensor  # (N, 4) XYXY, last pixel inclusive (SAM's convention, used by NMS)
    iou: torch.Tensor
    stability: torch.Tensor
    points: torch.Tensor  # (N, 2) the grid point that produced the mask
    crops: torch.Tensor  # (N, 4) the crop box it came from

    def __len__(self) -> int:
        return len(self.rles)

    def take(self, index: torch.Tensor) -> Candidates:
        idx = index.tolist()
        return Candidates([self.rles[i] for i in idx], self.boxes[index], self.iou[index],
                          self.stability[index], self.points[index], self.crops[index])

    @classmethod
    def cat(cls, parts: list[Candidates]) -> Candidates:
        if not parts:
            return cls.empty()
        return cls([r for p in parts for r in p.rles], *(torch.cat([getattr(p, f) for p in parts])
                   for f in ("boxes", "iou", "stability", "points", "crops")))

    @classmethod
    def empty(cls) -> Candidates:
        return cls([], torch.zeros(0, 4), torch.zeros(0), torch.zeros(0), torch.zeros(0, 2), torch.zeros(0, 4))


class Sam2AutomaticSegmenter:
    """A SAM-family model as a :class:`~segmentkit.roles.Segmenter` for task ``automatic``."""

    def __init__(self, card: ModelCard, options: Sam2AutomaticOptions | None = None):
        self.card = card
        self.options = options if options is not None else Sam2AutomaticOptions()
        self.prompter = Sam2Prompter(card, self.options)

    def segment(self, image: ImageInput, *, task: str | None = None) -> Segmentation:
        """Every object in ``image`` as masks with score, box, area (and RLE via ``to_coco_rle``)."""
        if task not in (None, "automatic"):
            raise TaskError(f"{self.card.id!r} segments with task 'automatic' only, not {task!r}")
        return generate_masks(self.prompter, load_image(image), self.options)


def generate_masks(prompter: Sam2Prompter, image: np.ndarray, opts: Sam2AutomaticOptions) -> Segmentation:
    """Run the generator on an (H, W, 3) uint8 image."""
    image_hw = (int(image.shape[0]), int(image.shape[1]))
    crops = crop_boxes(image_hw, opts.crop_n_layers, opts.crop_overlap_ratio)
    grids = [point_grid(max(1, int(opts.points_per_side / opts.crop_n_points_downscale_factor**i)))
             for i in range(opts.crop_n_layers + 1)]
    found = Candidates.cat([_crop_candidates(prompter, image, box, grids[layer], opts) for box, layer in crops])
    if len(crops) > 1 and len(found):
        widths = found.crops[:, 2] - found.crops[:, 0]
        heights = found.crops[:, 3] - found.crops[:, 1]
        found = found.take(nms(found.boxes, 1.0 / (widths * heights), opts.crop_nms_thresh))
    if opts.min_mask_region_area > 0 and len(found):
        found = _clean_small_regions(found, image_hw, opts)
    return _segmentation(found, image_hw)


def _crop_candidates(prompter: Sam2Prompter, image: np.ndarray, crop: CropBox, grid: torch.Tensor,
                     opts: Sam2AutomaticOptions) -> Candidates:
    x0, y0, x1, y1 = crop
    crop_hw = (y1 - y0, x1 - x0)
    features = prompter.embed_array(image[y0:y1, x0:x1])
    points = grid * torch.tensor([crop_hw[1], crop_hw[0]])
    parts = [
        _batch_candidates(prompter, features, points[s:s + opts.points_per_batch], crop, image.shape[:2], opts)
        for s in range(0, points.shape[0], opts.points_per_batch)
    ]
    found = Candidates.cat(parts)
    return found.take(nms(found.boxes, found.iou, opts.box_nms_thresh)) if len(found) else found


def _batch_candidates(prompter: Sam2Prompter, features: ImageFeatures, points: torch.Tensor, crop: CropBox,
                      image_hw: tuple[int, int], opts: Sam2AutomaticOptions) -> Candidates:
    engine = prompter.engine
    x0, y0, x1, y1 = crop
    crop_hw = (y1 - y0, x1 - x0)
    low_res, iou, point_rows = _decode_grid(engine, features, points, crop_hw, opts)
    offset = torch.tensor([x0, y0, x0, y0], dtype=torch.float32)
    chunk = max(1, _CHUNK_BYTES // (4 * crop_hw[0] * crop_hw[1]))
    parts = []
    for s in range(0, low_res.shape[0], chunk):
        logits = upscale_masks(low_res[s:s + chunk, None], crop_hw)[:, 0]
        stability = stability_score(logits, opts.mask_threshold, opts.stability_score_offset).cpu()
        keep = stability >= opts.stability_score_thresh if opts.stability_score_thresh > 0.0 \
            else torch.ones_like(stability, dtype=torch.bool)
        masks = above(logits[keep.to(logits.device)], opts.mask_threshold).cpu()
        boxes = masks_to_boxes_inclusive(masks) + offset
        inside = ~near_crop_edge(boxes, crop, image_hw)
        masks = masks[inside]
        rows = keep.nonzero().flatten()[inside] + s
        parts.append(Candidates(
            _encode(masks, crop, image_hw), boxes[inside], iou[rows], stability[keep][inside],
            point_rows[rows] + offset[:2], torch.tensor(crop, dtype=torch.float32).expand(len(rows), 4),
        ))
    return Candidates.cat(parts)


def _decode_grid(engine, features: ImageFeatures, points: torch.Tensor, crop_hw: tuple[int, int],
                 opts: Sam2AutomaticOptions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Candidate masks of the grid points above ``pred_iou_thresh``: low-res logits (M, h, w),
    IoU (M,) and the grid point of each (M, 2). Engines with ``candidates_above`` skip the
    upscaling of points that have no candidate above the threshold."""
    n = points.shape[0]
    in_points = map_points(points, crop_hw, engine.input_size)[None, :, None, :]
    labels = torch.ones(1, n, 1, dtype=torch.int64)
    if opts.multimask_output and opts.pred_iou_thresh > 0.0 and hasattr(engine, "candidates_above"):
        low_res, iou, rows = engine.candidates_above(features, in_points, labels, opts.pred_iou_thresh)
        return low_res, iou.cpu(), points[rows.cpu()]
    out = engine.decode(features, in_points, labels, None, None, multimask=opts.multimask_output)
    low_res = out.low_res_logits[0].flatten(0, 1)  # (n * C, h, w)
    iou = out.iou_scores[0].flatten().cpu()
    point_rows = points.repeat_interleave(low_res.shape[0] // n, dim=0)
    if opts.pred_iou_thresh > 0.0:
        keep = iou > opts.pred_iou_thresh
        low_res, iou, point_rows = low_res[keep.to(low_res.device)], iou[keep], point_rows[keep]
    return low_res, iou, point_rows


def _encode(masks: torch.Tensor, crop: CropBox, image_hw: tuple[int, int]) -> list[dict]:
    """(N, h, w) bool crop masks -> COCO RLE of the image-size masks (pycocotools)."""
    if masks.shape[0] == 0:
        return []
    x0, y0, x1, y1 = crop
    h, w = image_hw
    arr = masks.to(torch.uint8)
    if (x0, y0, x1, y1) != (0, 0, w, h):
        arr = F.pad(arr, (x0, w - x1, y0, h - y1))
    fortran = arr.transpose(1, 2).contiguous().numpy().T  # (H, W, N), Fortran order: no copy
    return coco_mask.encode(fortran)


def _decode(rles: list[dict]) -> np.ndarray:
    """COCO RLEs -> (N, H, W) bool."""
    return np.ascontiguousarray(coco_mask.decode(rles).transpose(2, 0, 1)).astype(bool)


def _clean_small_regions(found: Candidates, image_hw: tuple[int, int], opts: Sam2AutomaticOptions) -> Candidates:
    """Fill small holes and drop small islands; NMS again, preferring masks that did not change."""
    h, w = image_hw
    chunk = max(1, _CHUNK_BYTES // (5 * h * w))
    rles, boxes, unchanged = list(found.rles), found.boxes.clone(), []
    for s in range(0, len(found), chunk):
        masks = _decode(found.rles[s:s + chunk])
        masks, holes = remove_small_regions(masks, opts.min_mask_region_area, "holes")
        masks, islands = remove_small_regions(masks, opts.min_mask_region_area, "islands")
        changed = holes | islands
        unchanged.append(~changed)
        idx = np.flatnonzero(changed)
        if idx.size:
            new = torch.from_numpy(masks[idx])
            boxes[s + idx] = masks_to_boxes_inclusive(new)
            for i, rle in zip(idx, _encode(new, (0, 0, w, h), image_hw)):
                rles[s + i] = rle
    scores = torch.from_numpy(np.concatenate(unchanged).astype(np.float32))
    cleaned = Candidates(rles, boxes, found.iou, found.stability, found.points, found.crops)
    return cleaned.take(nms(boxes, scores, max(opts.box_nms_thresh, opts.crop_nms_thresh)))


def _segmentation(found: Candidates, image_hw: tuple[int, int]) -> Segmentation:
    if not len(found):
        masks, areas = np.zeros((0, *image_hw), dtype=bool), np.zeros(0, dtype=np.int64)
    else:
        masks, areas = _decode(found.rles), coco_mask.area(found.rles).astype(np.int64)
    boxes = found.boxes.numpy().copy()
    boxes[:, 2:] += 1.0  # last pixel inclusive -> exclusive (segmentkit's convention)
    boxes[areas == 0] = 0.0
    iou = found.iou.numpy().astype(np.float32)
    result = Masks(
        masks=masks, scores=iou, boxes=boxes,
        data={
            "iou_pred": iou,
            "stability": found.stability.numpy().astype(np.float32),
            "area": areas,
            "point_coords": found.points.numpy().astype(np.float32),
            "crop_box": found.crops.numpy().astype(np.float32),
        },
    )
    return Segmentation(kind="automatic", image_size=image_hw, masks=result)
