"""A Label Studio label config (its XML) as the controls and objects this backend uses."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ..errors import SegmentkitError

OBJECT_TAGS = frozenset({"image", "video"})
MASK_OUTPUTS = ("brushlabels", "polygonlabels")  # brush wins when a config has both
PROMPT_CONTROLS = frozenset({"keypointlabels", "rectanglelabels", "textarea"})
VIDEO_CONTROLS = frozenset({"videorectangle"})


class LabelConfigError(SegmentkitError, ValueError):
    """The project's label config is not XML, or has no control this backend can answer."""

    code = "bad_label_config"


@dataclass(frozen=True)
class Control:
    """One control tag: its type (lower case), name, the object it labels and its labels."""

    tag: str
    name: str
    to_name: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelConfig:
    """The controls and objects (name -> (tag, data key)) of a label config."""

    controls: tuple[Control, ...]
    objects: dict[str, tuple[str, str]]

    def output(self, to_name: str | None = None) -> Control:
        """The control masks are written to: ``BrushLabels``, else ``PolygonLabels``."""
        for tag in MASK_OUTPUTS:
            for control in self.controls:
                if control.tag == tag and (to_name is None or control.to_name == to_name):
                    return control
        raise LabelConfigError(
            "the label config has no BrushLabels or PolygonLabels control for masks "
            f'(controls: {self._names()}); add <BrushLabels name="tag" toName="image">'
        )

    def video_output(self) -> Control:
        """The ``VideoRectangle`` control tracked boxes are written to."""
        for control in self.controls:
            if control.tag in VIDEO_CONTROLS:
                return control
        raise LabelConfigError(f"the label config has no VideoRectangle control (controls: {self._names()})")

    def labels_of(self, to_name: str) -> tuple[str, ...]:
        """Every label the config offers for object ``to_name`` (for a video: its ``Labels``)."""
        found: list[str] = []
        for control in self.controls:
            if control.to_name == to_name:
                found += [label for label in control.labels if label not in found]
        return tuple(found)

    def data_key(self, to_name: str) -> tuple[str, str]:
        """(object tag, task data key) of object ``to_name``."""
        if to_name not in self.objects:
            raise LabelConfigError(f"the label config has no Image or Video named {to_name!r}")
        return self.objects[to_name]

    def _names(self) -> str:
        return ", ".join(f"{c.tag} {c.name!r}" for c in self.controls) or "none"


def parse_label_config(text: str) -> LabelConfig:
    """Parse the XML of a label config (the ``label_config`` / ``schema`` Label Studio sends)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise LabelConfigError(f"the label config is not valid XML: {exc}") from None
    controls: list[Control] = []
    objects: dict[str, tuple[str, str]] = {}
    for element in root.iter():
        tag = element.tag.lower()
        name = element.get("name")
        if name is None:
            continue
        if tag in OBJECT_TAGS:
            objects[name] = (tag, (element.get("value") or "").lstrip("$"))
        elif element.get("toName"):
            labels = tuple(child.get("value", "") for child in element if child.tag.lower() == "label")
            controls.append(Control(tag, name, element.get("toName", "").split(",")[0], labels))
    return LabelConfig(tuple(controls), objects)
