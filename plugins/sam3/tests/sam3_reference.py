"""Reference outputs of transformers' own SAM 3 pipelines on the tiny test checkpoint.

transformers' SAM 3 processors import torchvision, which does not install next to the
project's CPU torch, so the references are computed once in an environment that has it
(the lead's ``/tmp/segmentkit-bench-venv``: torch 2.14.1, torchvision 0.29.1, transformers
5.24.0) and stored small in ``data/reference.npz``; the parity tests rebuild the same
checkpoint (seed 0, checked by the weights' SHA-256) and compare. Run from the repo root::

    PYTHONPATH=core:plugins/sam3 /tmp/segmentkit-bench-venv/bin/python plugins/sam3/tests/sam3_reference.py

References: ``Sam3Processor`` + ``Sam3Model`` + ``post_process_instance_segmentation`` (text,
text + exemplar box, exemplar boxes alone); ``Sam3TrackerProcessor`` + ``Sam3TrackerModel`` +
``post_process_masks`` (point, box, multimask); ``Sam3VideoProcessor`` + ``Sam3VideoModel``
(``propagate_in_video_iterator`` + ``postprocess_outputs``); ``Sam3TrackerVideoProcessor`` +
``Sam3TrackerVideoModel`` (a box on frame 0, propagated). The processors are configured as the
hub's (square resize to the model size, mean = std = 0.5); the video processor is the SAM 2 one
transformers pairs with SAM 3, at the same settings.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
OUT = HERE / "data" / "reference.npz"
SIZE = 56
TEXT, OTHER_TEXT = "a red square", "dog"
EXEMPLAR = [8.0, 6.0, 40.0, 30.0]
CLICK, BOX = [50.0, 35.0], [10.0, 12.0, 60.0, 44.0]
THRESHOLD = MASK_THRESHOLD = 0.5


def inputs() -> tuple[np.ndarray, list[np.ndarray]]:
    """The test image (60 x 80) and a 4-frame video: a bright square moving right over noise."""
    rng = np.random.default_rng(7)
    frames = []
    for t in range(4):
        frame = rng.integers(0, 120, (60, 80, 3), dtype=np.uint8)
        frame[15:40, 10 + 6 * t : 35 + 6 * t] = (230, 40, 40)
        frames.append(frame)
    return frames[0], frames


def weights_sha(folder: Path) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def tracker_state(folder: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors under Sam3Tracker(Video)Model names (transformers' own renaming rules)."""
    from safetensors.torch import load_file

    renamed = {}
    for key, value in load_file(folder / "model.safetensors").items():
        if key.startswith("detector_model.vision_encoder.backbone."):
            renamed["vision_encoder.backbone." + key.split("backbone.", 1)[1]] = value
        elif key.startswith("tracker_neck."):
            renamed["vision_encoder.neck." + key[len("tracker_neck."):]] = value
        elif key.startswith("tracker_model."):
            while key.startswith("tracker_model."):  # save_pretrained writes the prefix twice
                key = key[len("tracker_model."):]
            renamed[key] = value
    return renamed


def main() -> None:
    from transformers import (
        AutoTokenizer,
        Sam3Model,
        Sam3Processor,
        Sam3TrackerModel,
        Sam3TrackerProcessor,
        Sam3TrackerVideoModel,
        Sam3TrackerVideoProcessor,
        Sam3VideoConfig,
        Sam3VideoModel,
        Sam3VideoProcessor,
    )
    from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor
    from transformers.models.sam3.image_processing_sam3 import Sam3ImageProcessor

    sys.path.insert(0, str(HERE.parents[0]))
    from segmentkit_sam3.testing import build_tiny_checkpoint

    out: dict[str, np.ndarray] = {}
    image, frames = inputs()
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_checkpoint(Path(tmp))
        out["weights_sha256"] = np.array(weights_sha(folder))
        tokenizer = AutoTokenizer.from_pretrained(folder)
        square = {"height": SIZE, "width": SIZE}
        images = Sam3ImageProcessor(size=square)
        videos = Sam2VideoVideoProcessor(size=square, image_mean=[0.5] * 3, image_std=[0.5] * 3)
        size = [list(image.shape[:2])]

        detector = Sam3Model.from_pretrained(folder).eval()
        processor = Sam3Processor(image_processor=images, tokenizer=tokenizer)
        cases = {"text": dict(text=TEXT), "text_boxes": dict(text=OTHER_TEXT, input_boxes=[[EXEMPLAR, BOX]]),
                 "box": dict(input_boxes=[[EXEMPLAR]])}
        for name, kwargs in cases.items():
            batch = processor(images=image, return_tensors="pt", **kwargs)
            with torch.no_grad():
                found = detector(**batch)
            result = processor.post_process_instance_segmentation(
                found, threshold=THRESHOLD, mask_threshold=MASK_THRESHOLD, target_sizes=size)[0]
            order = torch.argsort(result["scores"], descending=True)
            _store(out, f"concept_{name}", result["masks"][order].bool().numpy(), result["scores"][order].numpy())

        config = Sam3VideoConfig.from_pretrained(folder)
        tracker = Sam3TrackerModel(config.tracker_config).eval()
        missing, _ = tracker.load_state_dict(tracker_state(folder), strict=False)
        assert not missing, missing
        prompts = Sam3TrackerProcessor(image_processor=images, target_size=SIZE)
        cases = {"point": (dict(input_points=[[[CLICK]]], input_labels=[[[1]]]), False),
                 "box": (dict(input_boxes=[[BOX]]), False),
                 "point_multi": (dict(input_points=[[[CLICK]]], input_labels=[[[1]]]), True)}
        for name, (kwargs, multimask) in cases.items():
            batch = prompts(images=image, return_tensors="pt", **kwargs)
            with torch.no_grad():
                found = tracker(pixel_values=batch["pixel_values"], multimask_output=multimask,
                                **{k: v for k, v in batch.items() if k.startswith("input_")})
            masks = prompts.post_process_masks(found.pred_masks, batch["original_sizes"])[0][0]
            _store(out, f"click_{name}", masks.numpy(), found.iou_scores[0, 0].numpy())

        video = Sam3VideoModel.from_pretrained(folder).eval()
        vprocessor = Sam3VideoProcessor(image_processor=images, video_processor=videos, tokenizer=tokenizer)
        session = vprocessor.init_video_session(video=np.stack(frames), dtype=torch.float32)
        vprocessor.add_text_prompt(session, TEXT)
        for step in video.propagate_in_video_iterator(session):
            result = vprocessor.postprocess_outputs(session, step)
            _store(out, f"concept_video_{step.frame_idx}", result["masks"].numpy(), result["scores"].numpy(),
                   result["object_ids"].numpy())

        tvideo = Sam3TrackerVideoModel(config.tracker_config).eval()
        missing, _ = tvideo.load_state_dict(tracker_state(folder), strict=False)
        assert not missing, missing
        tprocessor = Sam3TrackerVideoProcessor(image_processor=images, video_processor=videos, target_size=SIZE)
        session = tprocessor.init_video_session(video=np.stack(frames), dtype=torch.float32)
        tprocessor.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=[3], input_boxes=[[BOX]])
        with torch.no_grad():
            tvideo(inference_session=session, frame_idx=0)  # the interactive flow: each prompt answered at once
        tprocessor.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=[9], input_points=[[[CLICK]]],
                                                   input_labels=[[[1]]])
        with torch.no_grad():
            tvideo(inference_session=session, frame_idx=0)
        for step in tvideo.propagate_in_video_iterator(session, start_frame_idx=0):
            masks = tprocessor.post_process_masks([step.pred_masks], [list(frames[0].shape[:2])])[0][:, 0]
            _store(out, f"object_video_{step.frame_idx}", masks.numpy(), step.object_score_logits.reshape(-1).numpy(),
                   np.array(step.object_ids))
    OUT.parent.mkdir(exist_ok=True)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): " + ", ".join(sorted(k for k in out if k.endswith("scores"))))


def _store(out: dict[str, np.ndarray], name: str, masks: np.ndarray, scores: np.ndarray,
           ids: np.ndarray | None = None) -> None:
    masks = np.asarray(masks, dtype=bool)
    out[f"{name}_shape"] = np.array(masks.shape)
    out[f"{name}_masks"] = np.packbits(masks.reshape(-1))
    out[f"{name}_scores"] = np.asarray(scores, dtype=np.float32)
    if ids is not None:
        out[f"{name}_ids"] = np.asarray(ids, dtype=np.int64)


if __name__ == "__main__":
    main()
