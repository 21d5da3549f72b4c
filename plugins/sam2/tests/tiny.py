"""A tiny random-weight SAM 2 checkpoint in the hub layout (``Sam2VideoModel`` + save_pretrained).

The structure is the real one (Hiera stages, FPN neck, prompt encoder, two-way mask
decoder, video memory modules) at small widths. A few tensors are set so that outputs are
not trivial: at these widths random mask logits are ~1e-5 and predicted IoUs sit at 0.5,
so the output layers of the mask hypernetworks and of the IoU head are rescaled (measured
on a calibration image) to give logits of std ~4 and IoU logits of std ~1.5; zero-initialised
embeddings get random values so that forgetting one of them shows; the object-score head
says "object" (the video model needs it).
"""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_config(image_size: int = 1024, hidden: int = 32):
    from transformers import Sam2VideoConfig

    backbone = dict(
        model_type="sam2_hiera_det_model", hidden_size=8, num_attention_heads=1, image_size=[image_size] * 2,
        blocks_per_stage=[1, 1, 2, 1], embed_dim_per_stage=[8, 16, 32, 64],
        num_attention_heads_per_stage=[1, 1, 2, 2], window_size_per_stage=[8, 4, 14, 7],
        global_attention_blocks=[3], window_positional_embedding_background_size=[7, 7],
    )
    vision = dict(
        model_type="sam2_vision_model", backbone_config=backbone, backbone_channel_list=[64, 32, 16, 8],
        backbone_feature_sizes=[[image_size // 4] * 2, [image_size // 8] * 2, [image_size // 16] * 2],
        fpn_hidden_size=hidden,
    )
    return Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config=dict(hidden_size=hidden, image_size=image_size, patch_size=16, mask_input_channels=8),
        mask_decoder_config=dict(hidden_size=hidden, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32),
        image_size=image_size, memory_attention_hidden_size=hidden, memory_attention_feed_forward_hidden_size=64,
        memory_attention_num_layers=1, memory_encoder_hidden_size=hidden, memory_encoder_output_channels=16,
        mask_downsampler_embed_dim=hidden, memory_fuser_embed_dim=hidden, memory_fuser_intermediate_dim=64,
        memory_attention_rope_feat_sizes=[image_size // 16] * 2,
    )


def build_tiny_checkpoint(path: Path, *, image_size: int = 1024, seed: int = 0, hidden: int = 32) -> Path:
    """Save a tiny ``sam2_video`` checkpoint (config.json + model.safetensors) into ``path``."""
    from transformers import Sam2VideoModel

    torch.manual_seed(seed)
    config = tiny_config(image_size, hidden)
    model = Sam2VideoModel(config).eval()
    with torch.no_grad():
        model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(10.0)
        model.no_memory_embedding.normal_(0.0, 0.5)
        backbone = model.vision_encoder.backbone
        backbone.pos_embed.normal_(0.0, 0.1)
        backbone.pos_embed_window.normal_(0.0, 0.1)
        mask_gain, iou_gain = _calibrate(model, config, image_size)
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.proj_out.weight.mul_(mask_gain)
            mlp.proj_out.bias.mul_(mask_gain)
        model.mask_decoder.iou_prediction_head.proj_out.weight.mul_(iou_gain)
    model.save_pretrained(path)
    return Path(path)


def _calibrate(video_model, config, image_size: int) -> tuple[float, float]:
    """Gains that bring mask logits to std ~4 and IoU logits to std ~1.5 on a random image."""
    from transformers import Sam2Config, Sam2Model

    parts = {k: {kk: vv for kk, vv in getattr(config, k).to_dict().items() if kk != "model_type"}
             for k in ("vision_config", "prompt_encoder_config", "mask_decoder_config")}
    image_model = Sam2Model(Sam2Config(**parts)).eval()
    image_model.load_state_dict(video_model.state_dict(), strict=False)
    gen = torch.Generator().manual_seed(1)
    pixels = torch.randn(1, 3, image_size, image_size, generator=gen)
    points = torch.rand(1, 16, 1, 2, generator=gen) * image_size
    out = image_model(pixel_values=pixels, input_points=points, input_labels=torch.ones(1, 16, 1, dtype=torch.long))
    iou_logits = torch.logit(out.iou_scores.clamp(1e-6, 1 - 1e-6))
    return 4.0 / float(out.pred_masks.std()), 1.5 / float(iou_logits.std())
