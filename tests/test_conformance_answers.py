"""The conformance suite checks answers: it fails on plugins with planted bugs.

Each bug is planted in a subclass of the worked example's ``example-colour`` models
(``tests/fixtures/segmentkit-example``, which passes the whole suite at level "quality"),
registered as an in-test plugin; one in-process pytest run holds a contract class per bug
and level, and the checks that must catch each bug are asserted to fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parent / "fixtures" / "segmentkit-example"

BUGS = '''
"""Planted bugs, one per class, in the example's colour prompter and tracker."""

import numpy as np
from segmentkit import ModelSpec, Point, hookimpl
from segmentkit_example import COLOUR, ColourOptions
from segmentkit_example.prompter import ColourPrompter
from segmentkit_example.tracker import ColourTracker


class SwapsXY(ColourPrompter):
    def select(self, image, prompts, tolerance):  # a click's x is taken as its row
        swapped = [Point(p.y, p.x, positive=p.positive) if isinstance(p, Point) else p for p in prompts]
        return super().select(image, swapped, tolerance)


class IgnoresNegatives(ColourPrompter):
    def select(self, image, prompts, tolerance):
        return super().select(image, [p for p in prompts if getattr(p, "positive", True)], tolerance)


class IgnoresBoxes(ColourPrompter):
    def in_box(self, image, box, tolerance):
        return np.zeros(image.shape[:2], dtype=bool)


class OneAnswerThrice(ColourPrompter):
    candidate_scales = (1.0, 1.0, 1.0)


class LosesObjects(ColourTracker):
    def start(self, source=None, *, stream=False):
        session = super().start(source, stream=stream)
        session.follow = lambda image, object_id, before: np.zeros_like(before)  # empty after the prompted frame
        return session


PROMPTERS = {"sound": ColourPrompter, "swaps_xy": SwapsXY, "ignores_negatives": IgnoresNegatives,
             "ignores_boxes": IgnoresBoxes, "one_answer_thrice": OneAnswerThrice}
TRACKERS = {"sound": ColourTracker, "loses_objects": LosesObjects}


def _spec(name, role, cls):
    card = COLOUR.model_copy(update={"id": "bug-" + name.replace("_", "-"), "roles": (role,),
                                     "tasks": ("prompt",) if role == "prompter" else ("track",)})
    return ModelSpec(card=card, role=role, loader=f"bugs:{cls.__name__}", options=ColourOptions)


@hookimpl
def segmentkit_prompters():
    return [_spec(name, "prompter", cls) for name, cls in PROMPTERS.items()]


@hookimpl
def segmentkit_trackers():
    return [_spec(f"{name}_tracker", "tracker", cls) for name, cls in TRACKERS.items()]
'''

SUITE = '''
import pytest
from segmentkit.registry import Registry
from segmentkit.testing.conformance import PrompterContract, TrackerContract

import bugs

REGISTRY = Registry(entry_points=False)
REGISTRY.register(bugs, name="bugs")


def contract(base, model_id, level):
    class Contract(base):
        @pytest.fixture(scope="class")
        @classmethod
        def model(cls):
            return REGISTRY.load(model_id)

    Contract.level = level
    return Contract


for _level in ("geometry", "quality"):
    for _name in bugs.PROMPTERS:
        globals()[f"Test_{_name}_{_level}"] = contract(PrompterContract, "bug-" + _name.replace("_", "-"), _level)
    for _name in bugs.TRACKERS:
        globals()[f"Test_{_name}_tracker_{_level}"] = contract(
            TrackerContract, "bug-" + _name.replace("_", "-") + "-tracker", _level)
'''

#: bug -> the checks that must fail at each level (geometry cannot see swapped coordinates:
#: on random weights there is no right answer to compare with).
CAUGHT = {
    "swaps_xy": {"geometry": set(), "quality": {"test_point_inside_the_object_overlaps_it"}},
    "ignores_negatives": {"geometry": {"test_negative_point_changes_the_mask"},
                          "quality": {"test_negative_point_changes_the_mask", "test_negative_point_removes_a_region"}},
    "ignores_boxes": {"geometry": {"test_another_box_gives_another_mask"},
                      "quality": {"test_another_box_gives_another_mask", "test_box_gives_a_mask_inside_the_box"}},
    "one_answer_thrice": {"geometry": {"test_multimask_candidates_differ"},
                          "quality": {"test_multimask_candidates_differ"}},
    "loses_objects_tracker": {"geometry": {"test_object_is_kept_after_the_prompted_frame"},
                              "quality": {"test_object_is_kept_after_the_prompted_frame",
                                          "test_moving_object_is_tracked"}},
}


def test_the_suite_fails_on_each_planted_bug(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(EXAMPLE)
    pytester.makepyfile(bugs=BUGS, test_suite=SUITE)
    checks = set().union(*(c for levels in CAUGHT.values() for c in levels.values()))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", " or ".join(sorted(checks)))
    failed: dict[str, set[str]] = {}
    ran: set[str] = set()
    for report in result.reprec.getreports("pytest_runtest_logreport"):
        _, cls, check = report.nodeid.split("::")
        ran.add(cls)
        if report.failed:
            failed.setdefault(cls, set()).add(check.split("[")[0])
    assert len(ran) == 2 * (len(CAUGHT) + 2), sorted(ran)  # every class ran, the sound ones included
    for level in ("geometry", "quality"):
        for sound in ("sound", "sound_tracker"):
            assert f"Test_{sound}_{level}" not in failed, result.stdout.str()[-3000:]
        for bug, checks in CAUGHT.items():
            missed = checks[level] - failed.get(f"Test_{bug}_{level}", set())
            assert not missed, f"{bug} at level {level}: {sorted(missed)} passed but must fail"
    assert not failed.get("Test_swaps_xy_geometry")  # only ground truth can tell x from y
