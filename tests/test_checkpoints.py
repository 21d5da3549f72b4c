"""Checkpoint config reading shared by the transformers-based plugins."""

import json

import pytest
from segmentkit import ModelCard
from segmentkit.checkpoints import labels_from_config, read_config, read_preprocessor_config
from segmentkit.errors import WeightsUnavailableError

CARD = ModelCard(id="toy", family="toy", roles=("segmenter",), tasks=("semantic",), license="MIT",
                 labels=("sky", "road"))


def test_read_config_checks_model_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "segformer"}))
    assert read_config(tmp_path, "toy", "segformer", "SegFormer")["model_type"] == "segformer"
    with pytest.raises(WeightsUnavailableError, match="is a 'segformer' model, not a Mask2Former"):
        read_config(tmp_path, "toy", "mask2former", "Mask2Former")
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(WeightsUnavailableError, match="cannot read"):
        read_config(tmp_path, "toy", "segformer", "SegFormer")


def test_labels_prefer_real_names_then_the_card():
    assert labels_from_config({"id2label": {"0": "cat", "1": "dog"}}, CARD) == {0: "cat", 1: "dog"}
    assert labels_from_config({"id2label": {"0": "LABEL_0", "1": "LABEL_1"}}, CARD) == {0: "sky", 1: "road"}
    assert labels_from_config({"num_labels": 3}, CARD) == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}


def test_read_preprocessor_config(tmp_path):
    assert read_preprocessor_config(tmp_path) == {}  # absent: the processor's defaults
    path = tmp_path / "preprocessor_config.json"
    path.write_text(json.dumps({"size": 512, "resample": 2}))
    assert read_preprocessor_config(tmp_path) == {"size": 512, "resample": 2}
    path.write_text(json.dumps({"resample": 3}))
    with pytest.raises(WeightsUnavailableError, match="resample=3 is not supported"):
        read_preprocessor_config(tmp_path)
    path.write_text("{not json")
    with pytest.raises(WeightsUnavailableError, match="not valid JSON"):
        read_preprocessor_config(tmp_path)
