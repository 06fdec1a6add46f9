"""Benchmarks that are not the RD benchmark: they run, on real onnxruntime sessions."""

from __future__ import annotations

from click.testing import CliRunner

from benchmarks import inpaint_layers


def test_inpaint_layers_times_each_depth_with_its_parameter_count() -> None:
    shallow = inpaint_layers.ms_per_block(1, batch=2, seconds=0.05)
    deeper = inpaint_layers.ms_per_block(2, batch=2, seconds=0.05)
    assert shallow[0] < deeper[0] and shallow[1] > 0 and deeper[1] > 0
    r = CliRunner().invoke(inpaint_layers.main, ["--layers", "1", "--batch", "1"])
    assert r.exit_code == 0, r.output
    assert "| 1 | " in r.output
