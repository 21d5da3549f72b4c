"""The tracker quality contract catches planted tracker bugs, and passes the sound tracker.

Each bug is planted in a subclass of the weightless ``classic`` tracker (which keeps the
contract at level "quality", save and restore included) by overriding one hook of its
session or its ``restore``. One in-process pytest run holds a ``TrackerContract`` class
per tracker; the quality checks that must catch each bug are asserted to fail, and every
other check to pass, so each failure is the bug's and not the harness's.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

BUGS = '''
"""Planted bugs in the classic tracker, one per class."""

import numpy as np
from segmentkit import ModelSpec, hookimpl
from segmentkit.io.video import FrameStream, open_video
from segmentkit.types import FrameMasks, Masks
from segmentkit_classic import CARD
from segmentkit_classic.options import ClassicOptions
from segmentkit_classic.tracker import ClassicSession, ClassicTracker


def _masks(result, masks, ids):
    """``result``'s frame with ``masks`` for objects ``ids``."""
    stack = np.asarray(masks, dtype=bool).reshape(-1, *result.masks.masks.shape[1:])
    return FrameMasks(result.frame_index, Masks(stack, object_ids=np.asarray(ids, dtype=np.int64)))


class SwapsIds(ClassicSession):
    def _track(self, frame, reverse):  # the first two objects' masks trade places; the ids stay in order
        result = super()._track(frame, reverse)
        masks = list(result.masks.masks)
        masks[:2] = masks[:2][::-1]
        return _masks(result, masks, result.object_ids)


class IgnoresReverse(ClassicSession):
    def _track(self, frame, reverse):  # always carries the mask over from frame - 1
        return super()._track(frame, False)


class BlanksSecond(ClassicSession):
    def _track(self, frame, reverse):  # the second object keeps its place but gets an empty mask
        result = super()._track(frame, reverse)
        masks = result.masks.masks.copy()
        masks[1:2] = False
        return _masks(result, masks, result.object_ids)


class DropsSecond(ClassicSession):
    def _track(self, frame, reverse):  # only the first object's mask comes back
        result = super()._track(frame, reverse)
        return _masks(result, result.masks.masks[:1], result.object_ids[:1])


class ForgetsMemory(ClassicSession):
    """Keeps a memory of its own (the objects it has seen), like SAM 2's memory bank, but does not
    save it: a restored session has nothing to carry over and gives empty masks until re-prompted."""

    def __init__(self, prompter, frames):
        super().__init__(prompter, frames)
        self.memory = set()

    def _prompt(self, frame, index, encoded):
        self.memory.add(self.objects.id_of(index))
        return super()._prompt(frame, index, encoded)

    def _track(self, frame, reverse):
        result = super()._track(frame, reverse)
        known = np.isin(result.masks.object_ids, sorted(self.memory))
        return _masks(result, result.masks.masks & known[:, None, None], result.object_ids)


class Tracker(ClassicTracker):
    session = ClassicSession

    def start(self, source=None, *, stream=False):  # ClassicTracker.start, with the planted session
        return self.session(self._prompter, FrameStream(max_held=2) if stream else open_video(source))


class RestoreStartsOver(Tracker):
    def restore(self, path, source=None):  # opens a fresh session over the video, ignoring the file
        return self.start(source)


TRACKERS = {"sound": Tracker, "restore_starts_over": RestoreStartsOver}
for _name, _session in {"swaps_ids": SwapsIds, "ignores_reverse": IgnoresReverse, "blanks_second": BlanksSecond,
                        "drops_second": DropsSecond, "forgets_memory": ForgetsMemory}.items():
    TRACKERS[_name] = type(_session.__name__ + "Tracker", (Tracker,), {"session": _session})
    globals()[TRACKERS[_name].__name__] = TRACKERS[_name]


@hookimpl
def segmentkit_trackers():
    return [ModelSpec(card=CARD.model_copy(update={"id": "bug-" + name.replace("_", "-"), "aliases": (),
                                                   "roles": ("tracker",), "tasks": ("track",)}),
                      role="tracker", loader=f"bugs:{cls.__name__}", options=ClassicOptions)
            for name, cls in TRACKERS.items()]
'''

SUITE = '''
import pytest
from segmentkit.registry import Registry
from segmentkit.testing.conformance import TrackerContract

import bugs

REGISTRY = Registry(entry_points=False)
REGISTRY.register(bugs, name="bugs")


def contract(model_id):
    class Contract(TrackerContract):
        level = "quality"

        @pytest.fixture(scope="class")
        @classmethod
        def model(cls):
            return REGISTRY.load(model_id, role="tracker")

    return Contract


for _name in bugs.TRACKERS:
    globals()[f"Test_{_name}"] = contract("bug-" + _name.replace("_", "-"))
'''

QUALITY = {"test_moving_object_is_tracked", "test_backward_propagation_tracks_the_object",
           "test_both_directions_track_the_object", "test_two_objects_are_tracked_apart",
           "test_restore_continues_the_session"}

#: planted bug -> the quality checks that must fail (all the others must pass)
CAUGHT = {
    "swaps_ids": {"test_two_objects_are_tracked_apart"},
    "ignores_reverse": {"test_backward_propagation_tracks_the_object", "test_both_directions_track_the_object"},
    "blanks_second": {"test_two_objects_are_tracked_apart"},
    "drops_second": {"test_two_objects_are_tracked_apart"},
    "forgets_memory": {"test_restore_continues_the_session"},
    "restore_starts_over": {"test_restore_continues_the_session"},
}


def test_each_planted_tracker_bug_fails_the_quality_contract(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(bugs=BUGS, test_suite=SUITE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", " or ".join(sorted(QUALITY)))
    outcomes: dict[str, dict[str, str]] = {}
    for report in result.reprec.getreports("pytest_runtest_logreport"):
        _, cls, check = report.nodeid.split("::")
        if report.when == "call" or report.outcome != "passed":
            outcomes.setdefault(cls.removeprefix("Test_"), {})[check] = report.outcome
    assert set(outcomes) == {"sound", *CAUGHT}, sorted(outcomes)
    assert outcomes["sound"] == dict.fromkeys(QUALITY, "passed"), result.stdout.str()[-3000:]
    for bug, checks in CAUGHT.items():
        failed = {check for check, outcome in outcomes[bug].items() if outcome == "failed"}
        assert failed == checks, f"{bug}: failed {sorted(failed)}, must fail exactly {sorted(checks)}"
        assert all(outcomes[bug][check] == "passed" for check in QUALITY - checks), outcomes[bug]
