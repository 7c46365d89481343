"""The backbone speed scripts run end to end at tiny sizes (their figures are for docs/training.md)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(script, *args):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def test_layer_bench_times_each_layer_pair_in_each_mode(tmp_path):
    out = tmp_path / "layers.jsonl"
    _run("bench_backbone_layers.py", "--shape", "2", "8", "8", "4", "--repeats", "1", "--modes", "graph", "jax",
         "--json", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(row["layer"], row["mode"]) for row in rows} == {
        (layer, mode) for mode in ("graph", "jax") for layer in (
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
    assert "FusedBatchNormGradV3" in result["op_type_ms"]  # the fused kernel is what trains
    assert "layer kind" in printed
