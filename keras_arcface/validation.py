"""Parameter ranges, declared once per class and checked at construction.

Every head, backbone and loss declares ``PARAMETER_RANGES``: parameter name -> :class:`Interval`
(the values the paper's formula allows).  :func:`check_parameters` validates the values a
constructor received; the error names the class, the parameter, the value and the range.
The registry-wide tests read the same declarations, so a new head or backbone is covered
as soon as it declares its ranges.
"""

import dataclasses
import functools
import inspect
import math
import numbers

from keras_arcface.errors import InputError


@dataclasses.dataclass(frozen=True)
class Interval:
    """A numeric range: ``low``/``high`` bounds (open or closed) and optionally integers only."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    allow_none: bool = False

    def __str__(self):
        kind = "an integer" if self.integer else "a number"
        if self.low == -math.inf and self.high == math.inf:
            text = kind
        else:
            low = "-inf" if self.low == -math.inf else f"{self.low:g}"
            high = "inf" if self.high == math.inf else "pi/2" if self.high == math.pi / 2 else f"{self.high:g}"
            text = f"{kind} in {'(' if self.low_open or self.low == -math.inf else '['}{low}, {high}" \
                   f"{')' if self.high_open or self.high == math.inf else ']'}"
        return text + (" or None" if self.allow_none else "")

    def contains(self, value):
        if value is None:
            return self.allow_none
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
            return False
        if self.integer and int(value) != value:
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below


#: Common ranges.
POSITIVE = Interval(0.0, low_open=True)
NON_NEGATIVE = Interval(0.0)
POSITIVE_INTEGER = Interval(1, integer=True)
NON_NEGATIVE_INTEGER = Interval(0, integer=True)
UNIT = Interval(0.0, 1.0)
ANGLE_MARGIN = Interval(0.0, math.pi / 2, high_open=True)
DROPOUT = Interval(0.0, 1.0, high_open=True)


def check_parameters(owner, **values):
    """Raise ``ValueError`` for the first value outside its declared range; return the values in order.

    ``owner`` is the class (an instance of it, or a registry's ``functools.partial`` of it) whose
    ``PARAMETER_RANGES`` apply; it names the class in the message.  Integers come back as ``int``, other
    numbers as ``float``; ``None``
    stays ``None`` where the range allows it.
    """
    cls = unwrap(owner) if isinstance(owner, (type, functools.partial)) else type(owner)
    ranges, name = parameter_ranges(cls), cls.__name__
    checked = []
    for parameter, value in values.items():
        interval = ranges[parameter]
        if not interval.contains(value):
            raise InputError(f"{name}: {parameter} must be {interval}, got {value!r}")
        checked.append(value if value is None else int(value) if interval.integer else float(value))
    return checked[0] if len(checked) == 1 else tuple(checked)


def unwrap(constructor):
    """The class behind a registry entry (a class, or a ``functools.partial`` of one)."""
    while isinstance(constructor, functools.partial):
        constructor = constructor.func
    return constructor


def parameter_ranges(constructor):
    """The ``PARAMETER_RANGES`` of a registered constructor (a class or a ``functools.partial`` of one),
    merged along its base classes (a subclass's declaration wins), less the keywords a partial fixes."""
    ranges = {}
    for cls in reversed(getattr(unwrap(constructor), "__mro__", ())):
        ranges.update(vars(cls).get("PARAMETER_RANGES", {}))
    while isinstance(constructor, functools.partial):
        for fixed in constructor.keywords:
            ranges.pop(fixed, None)
        constructor = constructor.func
    return ranges


def accepted_parameters(constructor):
    """The keyword parameters a registered constructor accepts: its class's and its base classes'
    (ours, not Keras'), less those a ``functools.partial`` already fixes.  ``None`` for a plain
    function taking ``**kwargs`` (it accepts any name)."""
    fixed, fixed_positional = set(), 0
    while isinstance(constructor, functools.partial):
        fixed |= set(constructor.keywords)
        fixed_positional += len(constructor.args)
        constructor = constructor.func
    if not isinstance(constructor, type):
        parameters = list(inspect.signature(constructor).parameters.values())
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return None
        return [p.name for p in parameters[fixed_positional:] if p.name not in fixed]
    names = []
    for cls in constructor.__mro__:
        if not cls.__module__.startswith("keras_arcface"):
            break
        if "__init__" in vars(cls):
            own = [p.name for p in inspect.signature(cls.__init__).parameters.values()
                   if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD][1:]  # without self
            own = own[fixed_positional:] if cls is constructor else own
            names += [name for name in own if name not in names and name not in fixed]
    return names
