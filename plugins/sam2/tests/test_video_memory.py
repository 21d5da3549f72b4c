"""The tracker's memory attention with each memory frame's keys projected once
(``LeanMemoryAttention.plan`` + ``BankProjections``) against the same forward projecting the
whole bank, and against transformers' ``Sam2VideoMemoryAttention``.

The tiny checkpoint's memory attention gets random biases, so that a cached key that keeps
or loses a bias term (or the temporal position term) shows.
"""

from __future__ import annotations

import pytest
import torch
from segmentkit_sam2.video_memory import LeanMemoryAttention
from segmentkit_sam2.video_testing import build_tiny_video_checkpoint


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from transformers import Sam2VideoModel

    path = build_tiny_video_checkpoint(tmp_path_factory.mktemp("sam2-video-memory"))
    model = Sam2VideoModel.from_pretrained(path).eval()
    torch.manual_seed(3)
    with torch.no_grad():
        for name, param in model.memory_attention.named_parameters():
            if name.endswith("bias"):
                param.normal_(0.0, 0.5)
    return model


def bank(model, frames: int, pointers: int):
    """A bank as transformers gathers it: per frame (stored bf16 features, spatial positions,
    temporal position), the concatenated memory and positions, and the current frame."""
    torch.manual_seed(0)
    config = model.config
    tokens = (config.image_size // 16) ** 2
    dim, mem_dim = config.memory_attention_hidden_size, config.memory_encoder_output_channels
    temporal = model.memory_temporal_positional_encoding.detach()
    planned = [(torch.randn(tokens, 1, mem_dim).to(torch.bfloat16), torch.randn(tokens, 1, mem_dim),
                temporal[i % temporal.shape[0]].reshape(-1)) for i in range(frames)]
    memory = torch.cat([f.float() for f, _, _ in planned] + [torch.randn(pointers, 1, mem_dim)])
    positions = torch.cat([p + t for _, p, t in planned] + [torch.randn(pointers, 1, mem_dim)])
    current = torch.randn(tokens, 1, dim)
    current_pos = torch.randn(tokens, 1, dim)
    return planned, dict(current_vision_features=current, memory=memory, current_vision_position_embeddings=current_pos,
                         memory_posision_embeddings=positions, num_object_pointer_tokens=pointers)


@pytest.mark.parametrize("pointers", [0, 8])
def test_projected_once_equals_the_full_projection(model, pointers):
    planned, inputs = bank(model, frames=3, pointers=pointers)
    lean = LeanMemoryAttention(model.memory_attention)
    with torch.inference_mode():
        full = lean(**inputs)
        reference = model.memory_attention(**inputs)
        lean.plan(planned)
        cached = lean(**inputs)
    assert torch.allclose(full, reference, atol=1e-4, rtol=1e-4)
    assert torch.allclose(cached, full, atol=1e-4, rtol=1e-4), float((cached - full).abs().max())


def test_each_frame_is_projected_once_while_it_stays(model, monkeypatch):
    """Frames read by several banks (as the bank slides) are projected on first read only;
    a bank that ages (other temporal terms) still equals the full projection."""
    planned, inputs = bank(model, frames=4, pointers=4)
    lean = LeanMemoryAttention(model.memory_attention, bank_capacity=8)
    calls = []
    project = lean._project
    monkeypatch.setattr(lean, "_project", lambda f, p: calls.append(f) or project(f, p))
    temporal = model.memory_temporal_positional_encoding.detach()
    with torch.inference_mode():
        for shift in range(3):  # the same stored frames, each one slot older per step
            aged = [(f, p, temporal[(i + shift + 1) % temporal.shape[0]].reshape(-1))
                    for i, (f, p, _) in enumerate(planned)]
            positions = inputs["memory_posision_embeddings"].clone()
            for i, (_, p, t) in enumerate(aged):
                positions[i * p.shape[0]:(i + 1) * p.shape[0]] = p + t
            step = {**inputs, "memory_posision_embeddings": positions}
            lean.plan(aged)
            cached = lean(**step)
            full = LeanMemoryAttention(model.memory_attention)(**step)
            assert torch.allclose(cached, full, atol=1e-4, rtol=1e-4)
    assert len(calls) == len(planned)  # one projection per stored frame over the three banks


def test_a_plan_that_does_not_match_the_memory_is_ignored(model):
    planned, inputs = bank(model, frames=2, pointers=0)
    lean = LeanMemoryAttention(model.memory_attention)
    with torch.inference_mode():
        lean.plan(planned[:1])  # one frame planned, two in the memory
        out = lean(**inputs)
    assert torch.allclose(out, LeanMemoryAttention(model.memory_attention)(**inputs), atol=1e-5)


def test_tracking_projects_each_stored_memory_once(model, tmp_path, monkeypatch):
    """In a tracked clip each frame's memory is projected once (a bank reads up to 7 of them
    per frame); the masks equal transformers' (test_tracker_parity covers more cases)."""
    import segmentkit as sk
    from segmentkit.registry import Registry
    from segmentkit.testing.compare import iou
    from segmentkit_sam2.video_testing import ReferenceTracker, moving_frames

    checkpoint = build_tiny_video_checkpoint(tmp_path / "ckpt")
    tracker = Registry().load("sam2.1-hiera-tiny", role="tracker", weights=checkpoint)
    attention = tracker.raw._fast.memory_attention
    calls = []
    project = attention._project
    monkeypatch.setattr(attention, "_project", lambda f, p: calls.append(f) or project(f, p))
    frames = moving_frames(12)
    with tracker.start(frames) as session:
        session.add_prompts(0, 1, [sk.Point(30, 30)])
        ours = {fm.frame_index: fm.masks.masks[0] for fm in session.propagate()}
    ref = ReferenceTracker(tracker.raw.model, frames)
    ref.add(0, 1, points=[(30, 30)], labels=[1])
    ref.run(0)
    theirs = {frame: by_id[1] for frame, by_id in ref.propagate()}
    assert 0 < len(calls) <= len(frames)
    assert min(iou(ours[f], theirs[f]) for f in theirs) >= 0.99


def test_dropped_memories_leave_the_cache(model):
    planned, inputs = bank(model, frames=3, pointers=0)
    lean = LeanMemoryAttention(model.memory_attention, bank_capacity=8)
    with torch.inference_mode():
        lean.plan(planned)
        lean(**inputs)
        assert len(lean.projections) == 3
        del planned  # the session trims these frames' memories
        fresh, step = bank(model, frames=1, pointers=0)
        lean.plan(fresh)
        lean(**step)
    assert len(lean.projections) == 1


@pytest.mark.parametrize("pointers", [0, 8])
def test_bf16_is_close_to_transformers(model, pointers):
    """bf16 attention products (the cross-attention averaging unprojected memory tokens, v_proj
    after) against transformers' fp32 forward, with and without a plan."""
    planned, inputs = bank(model, frames=3, pointers=pointers)
    lean = LeanMemoryAttention(model.memory_attention, torch.bfloat16)
    with torch.inference_mode():
        reference = model.memory_attention(**inputs)
        full = lean(**inputs)
        lean.plan(planned)
        cached = lean(**inputs)
    scale = float(reference.abs().max())
    for out in (full, cached):
        assert out.dtype == torch.float32
        error = float((out - reference).abs().max()) / scale
        assert 0 < error < 0.02, error  # 0: bf16 did not run
