"""The TrackingSession base as plugins see it: the documented hooks and helpers (and nothing
else of the base in segmentkit's own plugins), the text-query and pass hooks, the runtime
checks of what hooks return, the tensor-tree saver and the restore check of ``plugins --check``."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from segmentkit.cards import ModelCard
from segmentkit.contract import Violation
from segmentkit.errors import PluginContractError, PluginError, PromptError, SegmentkitError, SessionError
from segmentkit.io.video import FrameSource, FrameStream, open_video
from segmentkit.registry import Registry
from segmentkit.session_files import pack_tree, restore_session, unpack_tree
from segmentkit.sessions import TrackingSession
from segmentkit.types import Box, FrameMasks, Masks, Point, Text

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "writing-a-plugin.md"
SIZE = (12, 16)


# --------------------------------------------------------------------------- the documented hook set


def documented_hooks() -> set[str]:
    """The hooks the TrackingSession docstring lists (``_name(...)``)."""
    return set(re.findall(r"``(_[a-z]\w*)\(", TrackingSession.__doc__ or ""))


def base_names() -> tuple[set[str], set[str]]:
    """(private names of the base: methods and instance attributes, public methods of the base)."""
    session = TrackingSession(FrameStream())
    private = {n for n in [*dir(TrackingSession), *vars(session)] if n.startswith("_") and not n.startswith("__")}
    public = {n for n in dir(TrackingSession) if not n.startswith("_") and callable(getattr(TrackingSession, n))}
    return private, public


def plugin_sources() -> dict[str, str]:
    """Every shipped plugin module and the guide's example files, by where they are."""
    found = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
             for p in sorted(ROOT.glob("plugins/*/segmentkit_*/**/*.py"))}
    blocks = re.findall(r"<!-- file: (\S+\.py) -->\n```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"),
                        flags=re.DOTALL)
    found.update({f"docs/writing-a-plugin.md:{path}": body for path, body in blocks})
    return found


def session_classes(trees: dict[str, ast.Module]) -> list[tuple[str, ast.ClassDef]]:
    """The classes that extend TrackingSession, directly or through another one found here."""
    classes = [(where, node) for where, tree in trees.items() for node in ast.walk(tree)
               if isinstance(node, ast.ClassDef)]

    def base_names_of(node: ast.ClassDef) -> set[str]:
        return {b.id if isinstance(b, ast.Name) else b.attr for b in node.bases
                if isinstance(b, (ast.Name, ast.Attribute))}

    sessions = {"TrackingSession"}
    while True:
        more = {node.name for _, node in classes if base_names_of(node) & sessions} - sessions
        if not more:
            return [(where, node) for where, node in classes if base_names_of(node) & sessions]
        sessions |= more


def misuses(where: str, cls: ast.ClassDef, private: set[str], public: set[str], hooks: set[str]) -> list[str]:
    """What ``cls`` does with the base beyond its public names and the documented hooks."""
    found = []
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in (private - hooks) | public:
            found.append(f"{where}: {cls.name} overrides {node.name}")
    for node in ast.walk(cls):
        if not isinstance(node, ast.Attribute) or node.attr not in private:
            continue
        on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
        on_super = (isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
                    and node.value.func.id == "super")
        if not (on_self or on_super):
            continue
        if isinstance(node.ctx, ast.Store):
            found.append(f"{where}:{node.lineno}: {cls.name} assigns {node.attr}, a name of TrackingSession")
        elif node.attr not in hooks:
            found.append(f"{where}:{node.lineno}: {cls.name} uses {node.attr}, private to TrackingSession")
    return found


def test_the_docstring_lists_real_hooks() -> None:
    hooks = documented_hooks()
    assert {"_encode", "_prompt", "_prompt_text", "_track", "_push", "_before_propagate", "_remove", "_clear",
            "_release", "_state", "_load_state"} == hooks
    for name in hooks:
        assert callable(getattr(TrackingSession, name)), name
    for helper in ("mask", "frame_result", "empty_masks", "log_prompts", "frame_masks", "takes_text"):
        assert f"``{helper}" in TrackingSession.__doc__ or f":attr:`{helper}`" in TrackingSession.__doc__, helper


def test_no_plugin_uses_a_private_name_of_the_base() -> None:
    private, public = base_names()
    hooks = documented_hooks()
    trees = {where: ast.parse(source, where) for where, source in plugin_sources().items()}
    classes = session_classes(trees)
    names = {cls.name for _, cls in classes}
    assert {"ClassicSession", "Sam2TrackingSession", "Sam3Session", "GroundedSession", "ColourSession"} <= names
    found = [m for where, cls in classes for m in misuses(where, cls, private, hooks=hooks, public=public)]
    assert not found, "\n".join(found)


def test_the_scan_finds_misuse() -> None:
    private, public = base_names()
    source = (
        "class Mine(Sam2TrackingSession):\n"
        "    def _track(self, frame, reverse):\n"
        "        self._state = None\n"
        "        return self._results.get(frame) or super()._passes(frame, 'forward', 1)\n"
        "    def add_prompts(self, frame, object_id, prompts):\n"
        "        with self._lock:\n"
        "            return self._prompt(frame, 0, prompts)\n"
        "class Sam2TrackingSession(TrackingSession):\n"
        "    pass\n"
    )
    (_, cls), _ = session_classes({"mine.py": ast.parse(source)})
    found = misuses("mine.py", cls, private, public, documented_hooks())
    assert sorted(m.split(": ", 1)[1] for m in found) == [
        "Mine assigns _state, a name of TrackingSession", "Mine overrides add_prompts",
        "Mine uses _lock, private to TrackingSession", "Mine uses _passes, private to TrackingSession",
        "Mine uses _results, private to TrackingSession"]


# --------------------------------------------------------------------------- toy sessions


def square(frame: int, object_id: int) -> np.ndarray:
    """A mask that differs by frame and object, so order and frame mix-ups show."""
    mask = np.zeros(SIZE, dtype=bool)
    mask[object_id % 6 : object_id % 6 + 3, frame % 8 : frame % 8 + 4] = True
    return mask


class Squares(TrackingSession):
    """Every object is a fixed square per frame; ``answer`` can be swapped to plant a bug."""

    def __init__(self, frames):
        super().__init__(frames, model_id="squares")
        self.answer = lambda frame, hook: self.frame_result(frame, {o: square(frame, o) for o in self.object_ids})

    def _prompt(self, frame, index, encoded):
        return self.answer(frame, "_prompt")

    def _track(self, frame, reverse):
        return self.answer(frame, "_track")


class Finds(Squares):
    """A text tracker: a query finds objects 5 and 6; 6 shows on even frames only."""

    def __init__(self, frames):
        super().__init__(frames)
        self.queries: list[tuple[int, str]] = []
        self.planned: list = []

    def found(self, frame):
        ids = [o for o in self.object_ids if o != 6 or frame % 2 == 0]
        rows = [square(frame, o) for o in ids]
        return FrameMasks(frame, Masks(np.array(rows, bool).reshape(len(ids), *SIZE), object_ids=ids))

    def _prompt_text(self, frame, text):
        self.queries.append((frame, text))
        if self.num_frames == 0:
            return None
        for object_id in (5, 6):
            self.objects.add(object_id)
            self.log_prompts(frame, object_id, [Box(0, 0, 4, 4)])
        return self.found(frame)

    def _track(self, frame, reverse):
        return self.found(frame) if self.queries else super()._track(frame, reverse)

    def _before_propagate(self, passes):
        if passes[0][0].start == 7:
            raise SessionError("no propagation from 7 here")
        self.planned.append([(list(frames), reverse) for frames, reverse in passes])


def images(n: int = 6) -> list[np.ndarray]:
    return [np.full((*SIZE, 3), 20 * i, np.uint8) for i in range(n)]


def video(n: int = 6) -> FrameSource:
    return open_video(images(n))


def test_results_are_checked_and_name_the_session_class() -> None:
    with Squares(video()) as s:
        s.add_prompts(0, 1, [Point(1, 1)])
        s.add_prompts(0, 2, [Point(1, 1)])
        good = s.frame_result(3, {2: square(3, 2)})
        assert good.object_ids == [1, 2] and not good.masks.masks[0].any()
        assert np.array_equal(good.masks.masks[1], square(3, 2))
        with pytest.raises(Violation, match=r"Squares.frame_result got masks for objects \[9\]"):
            s.frame_result(3, {1: square(3, 1), 9: square(3, 9)})
        plants = {
            "dropped": (lambda f, hook: FrameMasks(f, Masks(square(f, 1)[None], object_ids=[1])),
                        r"objects \[1\]; the session tracks \[1, 2\] .*none for 2"),
            "swapped": (lambda f, hook: FrameMasks(f, Masks(np.stack([square(f, 2), square(f, 1)]), object_ids=[2, 1])),
                        r"objects \[2, 1\]; the session tracks \[1, 2\]"),
            "wrong frame": (lambda f, hook: s.frame_result(f + 1, {}), r"asked for frame \d, got frame \d"),
            "bare array": (lambda f, hook: np.zeros((2, *SIZE), bool),
                           r"must return segmentkit.FrameMasks, got ndarray"),
        }
        for name, (answer, message) in plants.items():
            s.answer = answer
            for hook, call in (("_prompt", lambda: s.add_prompts(2, 1, [Point(1, 1)])),
                               ("_track", lambda: list(s.propagate(0)))):
                with pytest.raises(Violation, match=rf"^Squares\.{hook}\b.*{message}") as caught:
                    call()
                assert isinstance(caught.value, PluginError) and isinstance(caught.value, SegmentkitError), name


def test_stream_results_are_checked_too() -> None:
    with Squares(FrameStream()) as s:
        assert len(s.push_frame(images()[0]).masks) == 0  # no objects yet
        s.add_prompts(0, 1, [Point(1, 1)])
        assert s.push_frame(images()[1]).object_ids == [1]
        s.answer = lambda f, hook: s.frame_result(f - 1, {})
        with pytest.raises(Violation, match="^Squares._push: asked for frame 2, got frame 1"):
            s.push_frame(images()[2])


class SquaresTracker:
    def __init__(self, card, options):
        pass

    def start(self, source=None, *, stream=False) -> Squares:
        return Squares(FrameStream() if stream else open_video(source))


def registry_of(**loaders: str) -> Registry:
    """A registry serving tracker ``model id -> loader class`` (a class of this module)."""
    import segmentkit

    def segmentkit_trackers():
        return [segmentkit.ModelSpec(card=ModelCard(id=model_id, family="test", roles=("tracker",), tasks=("track",),
                                                    license="MIT"), role="tracker", loader=f"{__name__}:{cls}")
                for model_id, cls in loaders.items()]

    plugin = type(sys)("tracker_plugin")
    plugin.segmentkit_trackers = segmentkit.hookimpl(segmentkit_trackers)
    registry = Registry(entry_points=False)
    registry.register(plugin, name="trackers")
    return registry


def test_the_handle_turns_a_base_violation_into_a_plugin_contract_error() -> None:
    with registry_of(squares="SquaresTracker").load("squares", "tracker").start(images()) as session:
        session.raw.answer = lambda f, hook: np.zeros((1, *SIZE), bool)
        with pytest.raises(PluginContractError, match="Squares._prompt must return segmentkit.FrameMasks"):
            session.add_prompts(0, 1, [Point(1, 1)])


def test_mask_lookup() -> None:
    with Squares(video()) as s:
        s.add_prompts(1, 3, [Point(1, 1)])
        list(s.propagate(1, max_frames=2))
        assert np.array_equal(s.mask(2, 3), square(2, 3))
        assert s.mask(0, 3) is None and s.mask(2, 4) is None and s.mask(-1, 3) is None and s.mask(99, 3) is None
    with pytest.raises(SessionError, match="closed"):
        s.mask(2, 3)


def test_text_queries_go_to_the_text_hook() -> None:
    assert Finds(video()).takes_text and not Squares(video()).takes_text
    with Finds(video()) as s:
        for bad in ([Text("a cat"), Point(1, 1)], [Text("a"), Text("b")]):
            with pytest.raises(PromptError, match="one text prompt on its own"):
                s.add_prompts(0, 1, bad)
        with pytest.raises(SessionError, match="out of range"):
            s.add_prompts(9, 1, [Text("a cat")])
        assert s.queries == [] and s.prompts == []
        first = s.add_prompts(2, 1, [Text("a cat")])
        assert s.queries == [(2, "a cat")] and first.object_ids == [5, 6]
        assert s.prompts == [(2, 5, [Box(0, 0, 4, 4)]), (2, 6, [Box(0, 0, 4, 4)]), (2, 1, [Text("a cat")])]
        seen = {fm.frame_index: fm.object_ids for fm in s.propagate(direction="both")}  # starts at the query
        assert s.planned == [[([2, 3, 4, 5], False), ([1, 0], True)]]
        assert seen == {0: [5, 6], 1: [5], 2: [5, 6], 3: [5], 4: [5, 6], 5: [5]}  # 6 missing on odd frames
        s.remove_object(5)
        s.remove_object(6)
        assert s.prompts == [(2, 1, [Text("a cat")])]  # the query is no object's prompt
        assert [fm.frame_index for fm in s.propagate()] == [2, 3, 4, 5]
        s.reset()
        assert s.prompts == []
        with pytest.raises(SessionError, match="no objects"):
            s.propagate()


def test_pass_hook_can_refuse() -> None:
    frames = video(8)
    with Finds(frames) as s:
        s.add_prompts(0, 1, [Point(1, 1)])
        with pytest.raises(SessionError, match="no propagation from 7"):
            s.propagate(7)
        assert [fm.frame_index for fm in s.propagate(0, max_frames=2)] == [0, 1]


def test_a_text_query_may_come_before_a_live_streams_first_frame() -> None:
    with Finds(FrameStream()) as s:
        with pytest.raises(SessionError, match="on frame 0"):
            s.add_prompts(3, 1, [Text("a cat")])
        waiting = s.add_prompts(0, 1, [Text("a cat")])
        assert waiting.frame_index == 0 and len(waiting.masks) == 0 and s.queries == [(0, "a cat")]
        assert s.frame_masks(0) is None  # nothing kept for a frame that has not come


def test_sessions_without_the_text_hook_take_text_like_any_prompt() -> None:
    with Squares(video()) as s:
        assert s.add_prompts(0, 1, [Text("a cat"), Box(0, 0, 4, 4)]).object_ids == [1]
        assert s.prompts == [(0, 1, [Text("a cat"), Box(0, 0, 4, 4)])]


def test_logged_prompts_do_not_move_the_next_propagation() -> None:
    with Squares(video()) as s:
        s.add_prompts(1, 1, [Point(1, 1)])
        list(s.propagate())
        s.log_prompts(4, 1, [Box(0, 0, 2, 2)])  # e.g. a detector's box during propagation
        assert s.prompts[-1] == (4, 1, [Box(0, 0, 2, 2)])
        assert [fm.frame_index for fm in s.propagate(direction="backward")] == [4, 3, 2, 1, 0]  # latest prompted


# --------------------------------------------------------------------------- saving


def test_tensor_trees_round_trip_exactly() -> None:
    torch = pytest.importorskip("torch")
    bf16 = torch.randn(3, 5).to(torch.bfloat16)
    tree = {0: {"feats": torch.randn(2, 4), "pointer": bf16, "ids": torch.arange(4)},
            "mask": np.eye(3, dtype=bool), "frames": (1, 2), "info": {"reverse": True, "note": None, "x": 0.5}}
    arrays: dict[str, np.ndarray] = {"taken": np.zeros(1)}
    import json

    meta = json.loads(json.dumps(pack_tree(tree, arrays)))  # as a saved manifest holds it
    back = unpack_tree(meta, arrays)
    assert set(back) == {0, "mask", "frames", "info"} and back["frames"] == [1, 2] and back["info"] == tree["info"]
    assert back[0]["pointer"].dtype == torch.bfloat16 and torch.equal(back[0]["pointer"], bf16)
    assert all(torch.equal(back[0][k], tree[0][k]) and back[0][k].dtype == tree[0][k].dtype for k in tree[0])
    assert np.array_equal(back["mask"], tree["mask"]) and "taken" in arrays and len(arrays) == 5
    with pytest.raises(TypeError, match="cannot save a set"):
        pack_tree({"bad": {1}}, {})


def test_the_session_files_module_does_not_import_torch() -> None:
    code = "import sys, segmentkit.session_files; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


class Saves(Squares):
    def _state(self):
        return {}, {}

    def _load_state(self, meta, arrays):
        pass


class SavesNoRestore(SquaresTracker):
    def start(self, source=None, *, stream=False) -> Saves:
        return Saves(open_video(source))


class SavesAndRestores(SavesNoRestore):
    def restore(self, path, source=None) -> Saves:
        return restore_session(self, path, source)


class DoesNotSave(SavesNoRestore):
    def start(self, source=None, *, stream=False) -> Squares:
        return Squares(open_video(source))


def test_check_flags_a_tracker_whose_sessions_save_but_cannot_restore() -> None:
    registry = registry_of(a="SavesNoRestore", b="SavesAndRestores", c="DoesNotSave", d="SquaresTracker")
    found = {p.models: p.error for p in registry.check()}
    assert list(found) == [("a",)]
    assert "SavesNoRestore has no restore(path, source=None), but its sessions (Saves) save" in found[("a",)]
