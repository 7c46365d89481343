"""Registry-wide parameter validation: every registered head and backbone, the triplet loss and
the training configuration declare the range of each numeric parameter (``PARAMETER_RANGES``);
a value outside it is refused at construction with the class, the parameter, the value and the
range in the message.  A new head or backbone is covered here as soon as it is registered."""

import dataclasses
import inspect
import math
import numbers

import pytest

from keras_arcface.backbones import BACKBONES, backbone_parameters, check_backbone_parameters
from keras_arcface.errors import InputError
from keras_arcface.heads import HEADS, get_head, head_parameters
from keras_arcface.losses import TripletLoss
from keras_arcface.training import TrainConfig
from keras_arcface.validation import Interval, parameter_ranges


def outside(interval):
    """Values just outside ``interval``, and values of the wrong kind."""
    values = [float("nan"), "0.5", True]
    if not interval.allow_none:
        values.append(None)
    if interval.low != -math.inf:
        values.append(interval.low - 1)
        if interval.low_open:
            values.append(interval.low)
    if interval.high != math.inf:
        values.append(interval.high + 1)
        if interval.high_open:
            values.append(interval.high)
    if interval.integer:
        values.append((interval.low if interval.low != -math.inf else 0) + 1.5)
    return values


def _numeric_defaults(function, skip=()):
    """Parameters of ``function`` whose default is a number (bools are flags, not ranges)."""
    return {name: parameter.default for name, parameter in inspect.signature(function).parameters.items()
            if name not in skip and isinstance(parameter.default, numbers.Real)
            and not isinstance(parameter.default, bool)}


def _range_cases(registry):
    """(name, parameter, bad value, interval) for every declared range of every registered constructor."""
    for name, constructor in registry.items():
        for parameter, interval in parameter_ranges(constructor).items():
            for value in outside(interval):
                yield pytest.param(name, parameter, value, interval, id=f"{name}-{parameter}={value!r}")


@pytest.mark.parametrize("name, parameter, value, interval", list(_range_cases(HEADS)))
def test_every_head_refuses_values_outside_its_ranges(name, parameter, value, interval):
    params = {"num_classes": 8, parameter: value}
    with pytest.raises(InputError) as error:
        get_head(name, params.pop("num_classes"), **params)
    message = str(error.value)
    assert HEADS[name].__name__ in message and parameter in message and repr(value) in message
    assert str(interval) in message


@pytest.mark.parametrize("name", sorted(HEADS))
def test_every_numeric_head_parameter_has_a_range_its_default_satisfies(name):
    cls = HEADS[name]
    ranges = parameter_ranges(cls)
    assert "num_classes" in ranges
    for owner in cls.__mro__:
        if "__init__" in vars(owner) and owner.__module__.startswith("keras_arcface"):
            for parameter, default in _numeric_defaults(owner.__init__).items():
                assert parameter in ranges, f"{cls.__name__}.{parameter} has no declared range"
                assert ranges[parameter].contains(default), (cls.__name__, parameter, default)
    assert set(head_parameters(cls)) >= set(ranges) - {"num_classes"}


@pytest.mark.parametrize("name", sorted(HEADS))
def test_a_misspelled_head_parameter_is_named(name):
    with pytest.raises(InputError, match=r"no parameter 'scael'.*its parameters"):
        get_head(name, 8, scael=1.0)


@pytest.mark.parametrize("name, parameter, value, interval", list(_range_cases(BACKBONES)))
def test_every_backbone_refuses_values_outside_its_ranges(name, parameter, value, interval):
    with pytest.raises(InputError) as error:
        check_backbone_parameters(name, {parameter: value})
    message = str(error.value)
    assert parameter in message and repr(value) in message and str(interval) in message


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_numeric_backbone_parameter_has_a_range_its_default_satisfies(name):
    constructor = BACKBONES[name]
    ranges = parameter_ranges(constructor)
    fixed = {"depth"}  # fixed by the registry entry (IResNet's positional depth, a partial's keywords)
    while hasattr(constructor, "func"):
        fixed |= set(constructor.keywords)
        constructor = constructor.func
    defaults = _numeric_defaults(constructor.__init__, skip=fixed)
    for parameter, default in defaults.items():
        assert parameter in ranges, f"{name}: {parameter} has no declared range"
        assert ranges[parameter].contains(default)
    assert set(ranges) <= set(backbone_parameters(name))
    with pytest.raises(InputError, match=r"no parameter 'widht'"):
        check_backbone_parameters(name, {"widht": 1.0})


def test_the_triplet_loss_refuses_a_negative_margin():
    with pytest.raises(InputError, match=r"TripletLoss: margin must be a number in \[0, inf\), got -0.1"):
        TripletLoss(margin=-0.1)


def _config_cases():
    for field, interval in TrainConfig.PARAMETER_RANGES.items():
        for value in outside(interval):
            yield pytest.param(field, value, id=f"{field}={value!r}")


@pytest.mark.parametrize("field, value", list(_config_cases()))
def test_the_training_configuration_refuses_values_outside_its_ranges(field, value):
    with pytest.raises(InputError, match=f"TrainConfig: {field} must be"):
        TrainConfig(data_dirs=["faces"], output_dir="out", **{field: value})


def test_every_numeric_training_setting_has_a_range():
    numeric = {field.name for field in dataclasses.fields(TrainConfig)
               if isinstance(field.default, numbers.Real) and not isinstance(field.default, bool)}
    assert numeric <= set(TrainConfig.PARAMETER_RANGES)
    TrainConfig(data_dirs=["faces"], output_dir="out")  # the defaults pass


def test_the_batch_must_split_over_the_replicas_and_workers():
    """One rule, checked once, by TrainingPlacement, which knows the replicas and the workers (a placement over
    two devices is checked in tests/training/distributed_check.py)."""
    from keras_arcface.training.distribute import Cluster, TrainingPlacement, check_batch_divides

    with pytest.raises(InputError, match="batch_size 6 must be divisible by the 2 replicas over 4 worker"):
        check_batch_divides(6, replicas=2, workers=4)
    check_batch_divides(8, replicas=2, workers=4)
    TrainConfig(data_dirs=["faces"], output_dir="out", batch_size=6, devices=4)  # known only where it trains
    assert TrainingPlacement(1, Cluster(), batch_size=7).replicas == 1


def test_interval_text_and_membership():
    assert str(Interval(0.0, math.pi / 2, high_open=True)) == "a number in [0, pi/2)"
    assert str(Interval(1, integer=True)) == "an integer in [1, inf)"
    assert str(Interval(0.0, 1.0, low_open=True)) == "a number in (0, 1]"
    assert Interval(0.0, 1.0).contains(1) and not Interval(0.0, 1.0, high_open=True).contains(1.0)
    assert not Interval().contains(True) and not Interval().contains("1") and Interval(allow_none=True).contains(None)
