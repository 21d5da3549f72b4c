"""A plugin with faults for `segmentkit plugins --check` and the exit codes (CLI tests).

``bad-class`` names a class its module lacks, ``bad-module`` a module of this (installed)
distribution that does not exist, ``bad-dependency`` a package that is not installed;
``fake-prompter`` clashes with the id of skfake's model; ``fine-segmenter`` is correct.
"""

from __future__ import annotations

import segmentkit as sk


def _card(model_id: str, **kw) -> sk.ModelCard:
    return sk.ModelCard(id=model_id, family="bad", roles=("segmenter",), tasks=("semantic",), license="MIT",
                        runtimes=("numpy",), **kw)


@sk.hookimpl
def segmentkit_segmenters():
    loaders = {"bad-class": "skbadloader:NoSuchClass", "bad-module": "skbadloader.modle:Segmenter",
               "bad-dependency": "not_installed_dep_xyz.model:Segmenter", "fake-prompter": "skbadloader:Segmenter",
               "fine-segmenter": "skbadloader:Segmenter"}
    return [sk.ModelSpec(card=_card(name), role="segmenter", loader=loader) for name, loader in loaders.items()]


class Segmenter:
    def __init__(self, card, options):
        self.card, self.options = card, options

    def segment(self, image, *, task=None):
        from segmentkit.io import load_image

        rgb = load_image(image)
        return sk.Segmentation.from_label_map((rgb[..., 0] > 127).astype("int32"), {0: "dark", 1: "red"})
