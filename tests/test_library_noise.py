"""Normal runs print no raw library chatter: ONNX export and int8 quantization stay quiet."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest
from conftest import JET_FEATURES, PARTICLE_FEATURES, make_model

from foundation.export import export_onnx, quantize
from foundation.export.quiet import TORCHSCRIPT_NOISE, quiet_quantizer, replay_warnings
from foundation.hub import FeatureSchema


@pytest.mark.slow  # ONNX export, parity and int8 quantization
def test_export_and_int8_print_no_library_warnings(tmp_path: Path, capfd):
    model = make_model("jetformer-tiny")
    model.feature_schema = FeatureSchema(PARTICLE_FEATURES, JET_FEATURES)
    handlers = list(logging.getLogger().handlers)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_onnx(model, tmp_path / "model.onnx")
        quantize(tmp_path / "model.onnx", tmp_path / "model.int8.onnx", "int8")
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
    captured = capfd.readouterr()
    assert "Inference failed" not in captured.err + captured.out
    assert "tensor_type" not in captured.err + captured.out  # no protobuf dumps
    assert logging.getLogger().handlers == handlers  # no handler left on the root logger


def test_only_the_named_noise_is_dropped(caplog):
    def record(category: type[Warning], message: str) -> warnings.WarningMessage:
        return warnings.WarningMessage(message, category, "exporter.py", 1)

    noise = [record(category, start + " and more") for category, start in TORCHSCRIPT_NOISE]
    other = record(UserWarning, "something a user should see")
    with pytest.warns(UserWarning, match="something a user should see"):
        kept = replay_warnings([*noise, other])
    assert kept == [other]
    with caplog.at_level(logging.WARNING), quiet_quantizer():
        logging.getLogger().warning("Inference failed or unsupported type to quantize x")
        logging.getLogger().warning("a real problem")
    assert [r.getMessage() for r in caplog.records] == ["a real problem"]
