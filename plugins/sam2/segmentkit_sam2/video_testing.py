"""Test helpers for the SAM 2 tracker: a tiny video checkpoint, synthetic clips, and the
reference (transformers' own ``Sam2VideoModel`` + ``Sam2VideoInferenceSession``, driven the
way its documentation shows) to compare against. Imported by tests and benchmarks only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------- checkpoints


def tiny_video_config(image_size: int = 128, *, full: bool = False) -> Any:
    """Hiera-tiny's ``Sam2VideoConfig`` (the transformers default) at ``image_size``.

    ``full=False`` narrows it for fast tests: fewer and thinner Hiera blocks, 128-wide
    neck / decoder / memory attention. The video modules need a neck wider than the
    64-channel memory (transformers hard-codes 64-channel memory keys and splits object
    pointers into 64-channel tokens), so 128 is the narrowest that runs.
    """
    from transformers import Sam2VideoConfig

    f = image_size // 4
    backbone: dict[str, Any] = dict(model_type="sam2_hiera_det_model", image_size=[image_size, image_size])
    vision: dict[str, Any] = dict(backbone_feature_sizes=[[f, f], [f // 2, f // 2], [f // 4, f // 4]])
    kwargs: dict[str, Any] = dict(image_size=image_size, memory_attention_rope_feat_sizes=[f // 4, f // 4])
    decoder: dict[str, Any] = {}
    hidden = 256
    if not full:
        hidden = 128
        backbone.update(hidden_size=16, embed_dim_per_stage=[16, 32, 64, 128], blocks_per_stage=[1, 1, 2, 1],
                        num_attention_heads_per_stage=[1, 1, 2, 2], window_size_per_stage=[8, 4, 14, 7],
                        global_attention_blocks=[3])
        vision.update(backbone_channel_list=[128, 64, 32, 16], fpn_hidden_size=hidden)
        decoder.update(hidden_size=hidden, mlp_dim=256, num_attention_heads=4, iou_head_hidden_dim=hidden)
        kwargs.update(memory_attention_hidden_size=hidden, memory_attention_num_layers=2,
                      memory_attention_feed_forward_hidden_size=256, memory_encoder_hidden_size=hidden,
                      mask_downsampler_embed_dim=hidden, memory_fuser_embed_dim=hidden,
                      memory_fuser_intermediate_dim=256)
    vision["backbone_config"] = backbone
    return Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config=dict(hidden_size=hidden, image_size=image_size),
        mask_decoder_config=decoder,
        **kwargs,
    )


def build_tiny_video_checkpoint(
    path: Path, *, image_size: int = 128, full: bool = False, seed: int = 0, memory_gain: float = 20.0
) -> Path:
    """Save a random-weight ``sam2_video`` checkpoint (config.json + model.safetensors) into ``path``.

    The object-score head is biased to "object present" (random weights say "no object"
    and every mask would be empty), and the zero-initialised learned embeddings get
    random values so that a tracker that forgets one of them gives different masks.
    ``memory_gain`` scales the memory cross-attention (values and output x gain, queries
    and keys x gain / 3.3): at random init the memory barely changes the masks, so a
    tracker that lost frames of memory would still match; with the gain, tracking with
    5 instead of 15 frames of memory drops the per-frame IoU to ~0.7.
    """
    from transformers import Sam2VideoModel

    torch.manual_seed(seed)
    model = Sam2VideoModel(tiny_video_config(image_size, full=full)).eval()
    with torch.no_grad():
        model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(10.0)
        for param in (model.no_memory_embedding, model.no_memory_positional_encoding,
                      model.memory_temporal_positional_encoding, model.no_object_pointer,
                      model.occlusion_spatial_embedding_parameter):
            param.normal_(0.0, 0.5)
        for layer in model.memory_attention.layers:
            attn = layer.cross_attn_image
            for proj, gain in ((attn.v_proj, memory_gain), (attn.o_proj, memory_gain),
                               (attn.q_proj, memory_gain / 3.3), (attn.k_proj, memory_gain / 3.3)):
                proj.weight.mul_(gain)
    model.save_pretrained(path)
    return Path(path)


# --------------------------------------------------------------------------- clips


def moving_frames(count: int, size: tuple[int, int] = (72, 96), *, seed: int = 0) -> list[np.ndarray]:
    """``count`` (H, W, 3) uint8 frames: two coloured ellipses drifting over stripes."""
    h, w = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    frames = []
    for i in range(count):
        t = i / max(1, count - 1)
        image = np.where(((xx + yy + 3 * i) // 8 % 2)[..., None] == 0, (60, 120, 150), (95, 150, 105)).astype(float)
        a = ((xx - (0.3 + 0.3 * t) * w) / (0.18 * w)) ** 2 + ((yy - 0.45 * h) / (0.25 * h)) ** 2 <= 1
        b = ((xx - (0.75 - 0.2 * t) * w) / (0.12 * w)) ** 2 + ((yy - (0.7 - 0.2 * t) * h) / (0.15 * h)) ** 2 <= 1
        image[a] = (205, 45, 50)
        image[b] = (240, 210, 40)
        image += rng.normal(0.0, 6.0, image.shape)
        frames.append(np.clip(np.rint(image), 0, 255).astype(np.uint8))
    return frames


def write_video(path: Path, frames: Sequence[np.ndarray], *, fps: int = 10, gop: int = 6) -> Path:
    """Write ``frames`` as a lossless H.264 mp4 (B-frames, a keyframe every ``gop`` frames)."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv444p"
        stream.options = {"g": str(gop), "qp": "0"}
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        out.mux(stream.encode())
    return Path(path)


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame of a video, decoded front to back with PyAV (independent of segmentkit.io)."""
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


# --------------------------------------------------------------------------- reference


def reference_pixels(frames: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """(N, 3, S, S) pixel values as transformers' Sam2 video processor makes them: uint8
    antialiased bilinear resize, rescale by 1/255, ImageNet normalisation."""
    batch = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
    resized = F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True).float()
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return (resized / 255.0 - mean) / std


def reference_processor(size: int) -> Any:
    """transformers' ``Sam2VideoProcessor`` for prompts only.

    Its image and video processors need torchvision, which segmentkit does not use; the
    prompt methods (``add_inputs_to_inference_session``) only read ``target_size``.
    """
    from transformers import Sam2VideoProcessor

    processor = Sam2VideoProcessor.__new__(Sam2VideoProcessor)
    processor.target_size = size
    processor.point_pad_value = -10
    return processor


class ReferenceTracker:
    """transformers' video tracking on frames, used as the documentation shows."""

    def __init__(self, model: Any, frames: Sequence[np.ndarray] | None = None, *,
                 frame_size: tuple[int, int] | None = None):
        from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

        self.model = model
        self.size = int(model.config.image_size)
        self.processor = reference_processor(self.size)
        video = None if frames is None else reference_pixels(frames, self.size)
        self.frame_size = frame_size or (frames[0].shape[:2] if frames is not None else None)
        h, w = self.frame_size if self.frame_size is not None else (None, None)
        self.session = Sam2VideoInferenceSession(video=video, video_height=h, video_width=w, dtype=torch.float32)

    def add(self, frame: int, obj_id: int, *, points: Sequence[tuple[float, float]] = (),
            labels: Sequence[int] = (), box: tuple[float, float, float, float] | None = None,
            mask: np.ndarray | None = None) -> None:
        """Queue prompts (pixel coordinates) for ``obj_id`` on ``frame``."""
        kwargs: dict[str, Any] = {}
        if mask is not None:
            kwargs["input_masks"] = mask
        else:
            if points:
                kwargs["input_points"] = [[[list(p) for p in points]]]
                kwargs["input_labels"] = [[list(labels)]]
            if box is not None:
                kwargs["input_boxes"] = [[list(box)]]
            kwargs["original_size"] = self.frame_size
        self.processor.add_inputs_to_inference_session(self.session, frame_idx=frame, obj_ids=obj_id, **kwargs)

    def run(self, frame: int) -> dict[int, np.ndarray]:
        """Run the model on ``frame`` (after :meth:`add`)."""
        return self._masks(self.model(inference_session=self.session, frame_idx=frame))

    def propagate(self, start: int | None = None, *, reverse: bool = False,
                  max_frames: int | None = None) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        for out in self.model.propagate_in_video_iterator(
            self.session, start_frame_idx=start, reverse=reverse, max_frame_num_to_track=max_frames
        ):
            yield out.frame_idx, self._masks(out)

    def push(self, frame: np.ndarray) -> dict[int, np.ndarray]:
        """Streaming: process one new frame (prompts for it added before)."""
        pixels = reference_pixels([frame], self.size)[0]
        return self._masks(self.model(inference_session=self.session, frame=pixels))

    def _masks(self, out: Any) -> dict[int, np.ndarray]:
        """Masks by object id, as ``post_process_masks`` makes them; object scores in ``last_scores``."""
        logits = F.interpolate(out.pred_masks.float(), size=tuple(self.frame_size), mode="bilinear",
                               align_corners=False)
        scores = torch.sigmoid(out.object_score_logits.float().reshape(-1))
        self.last_scores = {int(i): float(scores[k]) for k, i in enumerate(out.object_ids)}
        return {int(i): (logits[k, 0] > 0).numpy() for k, i in enumerate(out.object_ids)}
