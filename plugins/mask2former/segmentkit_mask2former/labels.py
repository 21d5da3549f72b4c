"""Label sets of the datasets Mask2Former checkpoints are trained on, in class-id order.

These are the ``id2label`` maps of the hub checkpoints' configs (public data), shipped so
cards can list labels without downloading anything; at load time the checkpoint's own
``config.id2label`` is preferred. ``*_THINGS`` are the countable classes: segments of the
other (stuff) classes are fused per class in panoptic output, as in Mask2Former. ADE20k
and Cityscapes come from :mod:`segmentkit.label_sets`, shared with other plugins.
"""

from __future__ import annotations

COCO_THINGS: tuple[str, ...] = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
    'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone',
    'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush',
)

COCO_STUFF: tuple[str, ...] = (
    'banner', 'blanket', 'bridge', 'cardboard', 'counter', 'curtain', 'door-stuff', 'floor-wood',
    'flower', 'fruit', 'gravel', 'house', 'light', 'mirror-stuff', 'net', 'pillow', 'platform',
    'playingfield', 'railroad', 'river', 'road', 'roof', 'sand', 'sea', 'shelf', 'snow', 'stairs',
    'tent', 'towel', 'wall-brick', 'wall-stone', 'wall-tile', 'wall-wood', 'water-other',
    'window-blind', 'window-other', 'tree-merged', 'fence-merged', 'ceiling-merged',
    'sky-other-merged', 'cabinet-merged', 'table-merged', 'floor-other-merged', 'pavement-merged',
    'mountain-merged', 'grass-merged', 'dirt-merged', 'paper-merged', 'food-other-merged',
    'building-other-merged', 'rock-merged', 'wall-other-merged', 'rug-merged',
)

COCO_PANOPTIC: tuple[str, ...] = COCO_THINGS + COCO_STUFF  # 133 classes, things first
COCO_INSTANCE: tuple[str, ...] = COCO_THINGS  # 80 classes

CITYSCAPES_THINGS: tuple[str, ...] = ("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")


# ADE20k panoptic (Mask2Former's and EoMT's ADE20k-150 panoptic split): the 50 stuff class ids;
# the other 100 are things. Names are :data:`segmentkit.label_sets.ADE20K`'s, same order.
ADE20K_STUFF_IDS: frozenset[int] = frozenset({
    0, 1, 2, 3, 4, 5, 6, 9, 11, 13, 16, 17, 21, 25, 26, 28, 29, 34, 40, 46, 48, 51, 52, 54, 59, 60, 61, 63,
    68, 77, 79, 84, 91, 94, 96, 99, 100, 101, 105, 106, 109, 113, 114, 117, 122, 128, 131, 140, 141, 145,
})
