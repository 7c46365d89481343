"""The learning-rate range test: the ramp, per-step losses from Keras' running mean, the picks, a run."""

import json

import keras
import numpy as np
import pytest

from keras_arcface.cli import main
from keras_arcface.training.lr_range import ExponentialRamp, StepLosses, lr_range_test, pick_learning_rates
from tests.training.test_train import TINY_IRESNET, _config


def test_ramp_is_geometric_from_min_to_max_then_held():
    ramp = ExponentialRamp(1e-3, 1.0, 4)
    np.testing.assert_allclose(ramp.values(), [1e-3, 1e-2, 1e-1, 1.0], rtol=1e-6)
    got = [float(keras.ops.convert_to_numpy(ramp(step))) for step in range(6)]
    np.testing.assert_allclose(got, [1e-3, 1e-2, 1e-1, 1.0, 1.0, 1.0], rtol=1e-5)
    assert ExponentialRamp(**ramp.get_config()).values().tolist() == ramp.values().tolist()
    with pytest.raises(ValueError):
        ExponentialRamp(1.0, 0.1, 10)
    with pytest.raises(ValueError):
        ExponentialRamp(0.1, 1.0, 1)


def test_step_losses_are_recovered_from_the_running_mean_per_epoch():
    recorder = StepLosses(smoothing=0.5, stop_factor=100)
    steps = [4.0, 2.0, 3.0]
    for k in range(1, 4):
        assert recorder.record(float(np.mean(steps[:k])))
    recorder.on_epoch_begin(1)
    assert recorder.record(1.0)
    np.testing.assert_allclose(recorder.losses, [4.0, 2.0, 3.0, 1.0])
    # Smoothing from 0 with bias correction: the first value is the first loss.
    expected, average = [], 0.0
    for n, loss in enumerate(recorder.losses, 1):
        average = 0.5 * average + 0.5 * loss
        expected.append(average / (1 - 0.5 ** n))
    np.testing.assert_allclose(recorder.smoothed, expected)


def test_keras_logs_a_running_mean_so_the_recovery_gives_each_batch_loss():
    x = np.random.default_rng(0).normal(size=(24, 3)).astype("float32")
    y = (np.arange(24) * 0.5).astype("float32")[:, None]  # batches with very different losses
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    recorder = StepLosses(stop_factor=1e9)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, callbacks=[recorder], verbose=0)
    prediction = keras.ops.convert_to_numpy(model(x))
    expected = [float(np.mean((prediction[i:i + 8] - y[i:i + 8]) ** 2)) for i in (0, 8, 16)]
    np.testing.assert_allclose(recorder.losses, expected, rtol=1e-4)


def test_divergence_stops_the_test():
    recorder = StepLosses(smoothing=0.0, stop_factor=2.0, patience=2)
    assert all(recorder.record(v) for v in (3.0, 2.5, 2.0))
    assert not recorder.record((2.0 * 3 + 9.0) / 4) and recorder.diverged  # step loss 9 > 2 x 2
    nan = StepLosses()
    assert not nan.record(float("nan")) and nan.diverged


def test_picks_on_a_known_curve():
    lrs = np.logspace(-4, 0, 81)
    # Falls fastest at lr 1e-2 (a logistic step in log lr), lowest at lr 1e-1, then rises.
    loss = 5 - 3 / (1 + np.exp(-(np.log10(lrs) + 2) * 4)) + 20 * np.maximum(np.log10(lrs) + 1, 0) ** 2
    steepest, minimum = pick_learning_rates(lrs, loss)
    assert abs(np.log10(steepest) + 2) <= 0.06 and abs(np.log10(minimum) + 1) <= 0.06
    assert pick_learning_rates(lrs, loss[::-1] * 0 + np.linspace(1, 5, 81)) == (1e-4, 1e-4)  # rising at once
    with pytest.raises(ValueError, match="at least 3"):
        pick_learning_rates(lrs[:2], loss[:2])


def test_a_range_test_run_and_its_command(tmp_path, capsys):
    config = _config(tmp_path, head="cosface")
    result = lr_range_test(config, min_lr=1e-4, max_lr=1e-1, steps=8)
    assert len(result.learning_rates) == len(result.smoothed) == 8 and not result.diverged
    np.testing.assert_allclose(result.learning_rates[0], 1e-4)
    np.testing.assert_allclose(result.learning_rates[-1], 1e-1, rtol=1e-6)
    assert np.all(np.isfinite(result.losses))
    assert 1e-4 <= result.steepest <= 1e-1 and result.suggested == pytest.approx(result.minimum / 10)
    # Softmax logits are unbounded, so a huge rate blows the loss up (a normalised head saturates).
    wild = lr_range_test(_config(tmp_path, head="softmax"), min_lr=1e-2, max_lr=1e6, steps=12)
    assert wild.diverged and len(wild.smoothed) < 12
    out = tmp_path / "find"
    code = main(["lr-find", "--data", *config.data_dirs, "--output", str(out), "--backbone", TINY_IRESNET["backbone"],
                 "--backbone-params", json.dumps(TINY_IRESNET["backbone_params"]),
                 "--image-size", "32", "--embedding-size", "16", "--batch-size", "8", "--steps", "6",
                 "--min-lr", "1e-3", "--max-lr", "1e-1", "--augment", "light"])
    assert code == 0 and "suggested lr" in capsys.readouterr().out
    saved = json.loads((out / "lr_range.json").read_text())
    assert len(saved["losses"]) == 6 and (out / "lr_range.png").stat().st_size > 1000
