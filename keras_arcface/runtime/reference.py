"""What an embedder is and how it is calibrated, in one frozen object handed to it at construction.

A :class:`ModelReference` names the model (a zoo name and format, or a file), the input spec it is fed
with, its same-person threshold and its thresholds per false-accept rate with their sources, its
licence as stated, and where its file came from (bundled, an installed model package, the cache, a
mirror, or a path given).  :func:`keras_arcface.zoo.load_model` builds it from the model card; a model
file read by path gets it from its sidecar ``<file>.json``; a Keras model from its folder's
``threshold.json``.  Every consumer (verification, galleries, the demo, ``--json``) reads it, never an
attribute set on the embedder from outside.
"""

import dataclasses
import types

from keras_arcface.errors import InputError


def far_key(far):
    """``1e-3`` -> "1e-3": the key a card's ``threshold_at_far`` uses for a false-accept rate."""
    try:
        value = float(far)
    except (TypeError, ValueError):
        raise InputError(f"a false-accept rate must be a number such as 1e-3, got {far!r}") from None
    if not 0.0 < value < 1.0:
        raise InputError(f"a false-accept rate must be in (0, 1), got {far!r}")
    return f"{value:.0e}".replace("e-0", "e-")


@dataclasses.dataclass(frozen=True)
class ModelReference:
    """A model and its calibration.

    ``name``: the zoo name (or the file / model name); ``format``: the zoo artifact format, or None for a
    model that is no zoo artifact; ``spec``: the :class:`InputSpec` faces are fed with; ``threshold``:
    the same-person cosine threshold (None when uncalibrated) and ``threshold_source``; ``far_thresholds``:
    ``{"1e-3": cosine, ...}`` with ``far_source``; ``licence``: the card's licence entry (empty when
    unknown); ``source``: where the file came from ("bundled", "installed", "cached", "mirror", "file",
    "keras model"); ``path``: the file read (or the Keras model's name).
    """

    name: str
    spec: "keras_arcface.runtime.embedder.InputSpec"  # noqa: F821  (not imported: embedder.py builds references)
    format: str = None
    threshold: float = None
    threshold_source: str = ""
    far_thresholds: types.MappingProxyType = dataclasses.field(default_factory=dict)
    far_source: str = ""
    licence: types.MappingProxyType = dataclasses.field(default_factory=dict)
    source: str = "file"
    path: str = ""

    def __post_init__(self):
        if not callable(getattr(self.spec, "prepare", None)):
            raise TypeError(f"spec must be an InputSpec, got {type(self.spec).__name__}")
        if self.threshold is not None:
            object.__setattr__(self, "threshold", float(self.threshold))
        far = {far_key(key): float(value) for key, value in dict(self.far_thresholds or {}).items()}
        object.__setattr__(self, "far_thresholds", types.MappingProxyType(far))
        object.__setattr__(self, "licence", types.MappingProxyType(dict(self.licence or {})))

    @property
    def is_zoo_model(self):
        return self.format is not None

    def __str__(self):
        """What loads this model again: ``name:format`` for a zoo model, else its path."""
        return f"{self.name}:{self.format}" if self.is_zoo_model else str(self.path or self.name)

    def threshold_at_far(self, far):
        """``(threshold, source)`` measured for the false-accept rate ``far``; an :class:`InputError` saying
        which rates are known when this one is not."""
        key = far_key(far)
        if key not in self.far_thresholds:
            where = (f"its card measured {', '.join(sorted(self.far_thresholds))}" if self.far_thresholds else
                     f"the {self.name} card records none" if self.is_zoo_model else
                     "only zoo models carry thresholds measured at a false-accept rate")
            raise InputError(f"no threshold for FAR {float(far):g} with this model ({where}); pass a threshold "
                             "instead")
        return self.far_thresholds[key], f"FAR {key} on LFW ({self.far_source or 'the model card'})"

    @classmethod
    def from_sidecar(cls, path, spec, metadata):
        """The reference of a model file read by path, from its sidecar's ``metadata`` (``{}`` without one)."""
        import pathlib

        threshold = metadata.get("threshold")
        source = metadata.get("threshold_source") or (f"{pathlib.Path(path).name}.json" if threshold is not None
                                                      else "")
        return cls(name=metadata.get("model") or pathlib.Path(path).name, spec=spec, threshold=threshold,
                   threshold_source=source, far_thresholds=metadata.get("far_thresholds") or {},
                   far_source=metadata.get("far_source", ""), licence=metadata.get("licence") or {},
                   source="file", path=str(path))

    def with_spec(self, spec):
        """The same reference fed with another input spec (a user's override)."""
        return self if spec is None or spec == self.spec else dataclasses.replace(self, spec=spec)


class ReferencedEmbedder:
    """What every embedder reads from its :class:`ModelReference` (``self.reference``, set at construction)."""

    @property
    def spec(self):
        """The input spec faces are fed with (the reference's)."""
        return self.reference.spec

    @property
    def threshold(self):
        """The calibrated same-person threshold (the reference's), or None."""
        return self.reference.threshold
