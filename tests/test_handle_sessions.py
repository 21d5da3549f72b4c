"""sk.Session is complete: save, object_ids, frame_masks and prompts are the handle's, checked;
nothing of the plugin's session leaks through."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import test_ipc_support as support  # registered by tests/conftest.py
from segmentkit.errors import PluginContractError, SessionError
from segmentkit.registry import Registry
from segmentkit.types import Box, FrameMasks, Masks, Point

echo_plugin = support.load_sibling("prompt_echo")
IMAGE = np.full((40, 50, 3), 90, dtype=np.uint8)


@pytest.fixture()
def session(tmp_path: Path):
    support.save_png(tmp_path / "clip" / "0000.png", IMAGE)
    support.save_png(tmp_path / "clip" / "0001.png", IMAGE)
    registry = Registry(entry_points=False)
    registry.register(echo_plugin, name="prompt_echo")
    with registry.load("echo", "tracker").start(str(tmp_path / "clip")) as session:
        yield session


def test_checked_facts(session, tmp_path: Path) -> None:
    session.add_prompts(0, 4, [Box(2, 2, 20, 20)])
    session.add_prompts(1, 2, [Point(30, 30)])
    frames = list(session.propagate(0))
    assert session.object_ids == [4, 2] and session.model_id == "echo" and not session.is_stream
    assert session.prompts == [(0, 4, [Box(2, 2, 20, 20)]), (1, 2, [Point(30, 30)])]
    latest = session.frame_masks(1)
    assert latest.frame_index == 1 and np.array_equal(latest.masks.masks, frames[-1].masks.masks)
    path = session.save(tmp_path / "s.npz")
    assert isinstance(path, Path) and path.stat().st_size > 0


def test_broken_answers_name_the_plugin(session, monkeypatch: pytest.MonkeyPatch) -> None:
    session.add_prompts(0, 1, [Box(2, 2, 20, 20)])
    list(session.propagate(0))
    wrong = FrameMasks(0, Masks(np.zeros((1, 40, 50), dtype=bool), object_ids=[1]))
    monkeypatch.setattr(session.raw, "frame_masks", lambda frame: wrong)
    with pytest.raises(PluginContractError, match="asked for frame 1, got frame 0"):
        session.frame_masks(1)
    monkeypatch.setattr(type(session.raw), "object_ids", property(lambda self: ["one"]))
    with pytest.raises(PluginContractError, match="object_ids must be integers"):
        _ = session.object_ids


def test_no_leaks(session, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AttributeError):
        _ = session.sets  # the plugin's own attribute: only through session.raw
    with pytest.raises(AttributeError):
        _ = session.tracker.card_of_the_plugin
    monkeypatch.setattr(type(session.raw), "save", None)
    with pytest.raises(SessionError, match="cannot be saved"):
        session.save("x.npz")


def test_frames_come_one_mask_per_object_in_order(session, monkeypatch: pytest.MonkeyPatch) -> None:
    session.add_prompts(0, 1, [Box(2, 2, 20, 20)])
    session.add_prompts(0, 2, [Box(22, 2, 40, 20)])
    masks = session.raw._masks

    def swapped(index: int) -> FrameMasks:
        fm = masks(index)
        return FrameMasks(index, fm.masks[[1, 0]])

    monkeypatch.setattr(session.raw, "_masks", swapped)
    with pytest.raises(PluginContractError, match=r"objects \[2, 1\]; the session tracks \[1, 2\]"):
        list(session.propagate(0))
    def renamed(index: int) -> FrameMasks:
        fm = masks(index)
        return FrameMasks(index, Masks(fm.masks.masks, object_ids=[1, 9]))

    monkeypatch.setattr(session.raw, "_masks", renamed)
    with pytest.raises(PluginContractError, match=r"objects \[1, 9\]; the session tracks \[1, 2\]"):
        list(session.propagate(0))


def test_track_answers_for_the_frame_it_was_asked(session, monkeypatch: pytest.MonkeyPatch) -> None:
    session.add_prompts(0, 1, [Box(2, 2, 20, 20)])
    masks = session.raw._masks
    monkeypatch.setattr(session.raw, "_track", lambda frame, reverse: masks(0))
    with pytest.raises(PluginContractError, match="asked for frame 1, got frame 0"):
        list(session.propagate(0))
    monkeypatch.setattr(session.raw, "_track", lambda frame, reverse: masks(frame).masks.masks)
    with pytest.raises(PluginContractError, match="must return segmentkit.FrameMasks, got ndarray"):
        list(session.propagate(0))


def test_a_tracker_without_restore_says_so(session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(echo_plugin.Echo, "restore")
    with pytest.raises(SessionError, match="cannot restore saved sessions"):
        session.tracker.restore("s.npz")
