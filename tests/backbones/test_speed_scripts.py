"""The backbone speed scripts run end to end at tiny sizes (their figures are for docs/training.md)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(script, *args):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


@pytest.mark.slow
def test_layer_bench_times_each_layer_pair_in_each_mode(tmp_path):
    """Slow tier (a speed script end to end); the default tier checks each pair it times computes the same
    (test_depthwise, test_padding, test_prelu, test_fused_batch_norm) and a script's timing path
    (test_profiler_attributes_the_step_to_layer_classes)."""
    out = tmp_path / "layers.jsonl"
    _run("bench_backbone_layers.py", "--shape", "2", "8", "8", "4", "--repeats", "1", "--modes", "graph", "jax",
         "--json", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(row["layer"], row["mode"]) for row in rows} == {
        (layer, mode) for mode in ("graph", "jax") for layer in (
            "Conv2D 3x3 keras", "Conv2D 3x3 channels-first dW", "Conv2D 3x3/2 pad layer", "Conv2D 3x3/2 pad inside",
            "DepthwiseConv2D native", "DepthwiseConv2D shifted sum", "DepthwiseConv2D /2 pad layer",
            "DepthwiseConv2D /2 pad inside", "BatchNormalization keras",
            "BatchNormalization fused", "PReLU keras", "PReLU select")}
    assert all(row["median_ms"] > 0 for row in rows)


def test_profiler_attributes_the_step_to_layer_classes(tmp_path):
    out = tmp_path / "profile.json"
    printed = _run("profile_train_step.py", "--batch-size", "2", "--image-size", "32", "--num-classes", "10",
                   "--steps", "1", "--json", str(out))
    result = json.loads(out.read_text())
    kinds = result["layer_kind_ms"]
    assert {"Conv2D", "DepthwiseConv2D", "BatchNormalization", "PReLU"} <= set(kinds)
    assert kinds["Conv2D"] > 0 and result["step_s"] > 0
    # The fused kernel is what trains (oneDNN's, _MklNativeFusedBatchNormGradV3, where oneDNN is on):
    assert any(op.endswith("FusedBatchNormGradV3") for op in result["op_type_ms"])
    assert "layer kind" in printed


@pytest.mark.parametrize("networks", [pytest.param(["mobilefacenet"], id="mobilefacenet", marks=pytest.mark.slow),
                                      pytest.param(["mobilefacenet", "iresnet18"], id="both", marks=pytest.mark.slow)])
def test_torch_peer_bench_times_our_row_and_checks_the_mirrors_where_torch_is_installed(tmp_path, networks):
    """Our row always; with PyTorch installed (it is not a dependency) its rows too, which fail unless
    the PyTorch networks count the same trainable parameters as ours.  Slow tier (a speed script end to end),
    one network and both."""
    import importlib.util

    out = tmp_path / "peer.jsonl"
    rows = ["keras graph"] + (["torch eager"] if importlib.util.find_spec("torch") else [])
    printed = _run("bench_torch_peer.py", "--tiny", "--rounds", "1", "--networks", *networks,
                   "--rows", *rows, "--json", str(out))
    measured = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(row["network"], row["row"]) for row in measured] == [
        (network, row) for network in networks for row in rows]
    assert all(row["samples_per_s"] > 0 for row in measured)
    assert "median of rounds" in printed
