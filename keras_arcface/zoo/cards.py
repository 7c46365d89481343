"""Model cards: one JSON file per pretrained model in the top-level ``zoo/`` folder (pure data).

A card names the architecture (backbone, head and their parameters, embedding size), the input
it expects, how it was trained, what it measured (with the protocol), the licences of the
weights and of the training data, its artifacts (for each format the file name, its size in bytes
and its sha256) and its ``config`` (the model folder's ``config.json``, hashed the same way: the
Keras route rebuilds the backbone from it, as it does a training run's folder).  Downloads are
verified against exactly those two numbers.
"""

import dataclasses
import json
import os
import pathlib

from keras_arcface.errors import InputError
from keras_arcface.formats import FORMATS

CARDS_ENV = "KERAS_ARCFACE_ZOO_CARDS"

#: Formats a card may list: the Keras backbone weights and the files the runtime reads (the format table's).
ARTIFACT_FORMATS = ("keras", *(name for name, fmt in FORMATS.items() if fmt.runtime))
#: The format name of a card's ``config`` entry (not a model format: it is no artifact of ``artifacts``).
CONFIG_FORMAT = "config"
#: An artifact passes when its LFW accuracy is at most this far below the Keras model's.
ACCURACY_GATE = 0.005
#: The benchmark name of the CelebA hold-out entries (``benchmarks/celeba-holdout``, scripts/card_rule_metrics.py).
HOLDOUT_BENCHMARK = "CelebA hold-out"
#: The zoo's quality bar (docs/zoo.md): a listed model's runtime file reaches this 10-fold LFW accuracy ...
QUALITY_BAR_LFW = 0.985
#: ... and the CelebA hold-out benchmark's, so it is measured on faces the LFW figures did not tune.
QUALITY_BAR_HOLDOUT = 0.94
#: The default rule's tolerance: a model within this of the best LFW and of the best hold-out accuracy qualifies.
DEFAULT_RULE_TOLERANCE = 0.001
#: The default operating point: the verdict threshold is the one the card measured for this false-accept
#: rate (docs/verification.md, "The operating point"); ``--threshold`` and ``--far`` override it.
OPERATING_FAR = 1e-3
REQUIRED_FIELDS = ("name", "summary", "backbone", "backbone_params", "embedding_size", "head", "head_params",
                   "input_spec", "training", "metrics", "licence", "artifacts", "config")


class CardError(InputError):
    """A model card that is missing a field, names an unknown format, or does not parse."""


@dataclasses.dataclass(frozen=True)
class Artifact:
    """One file of a model: ``file`` (its name on a mirror, under ``<model name>/``), ``size``, ``sha256``;
    ``input_spec``: the file's, where it differs from the card's (a BGR model's TFLite file takes RGB)."""

    format: str
    file: str
    size: int
    sha256: str
    input_spec: dict = None

    def __post_init__(self):
        if self.format not in ARTIFACT_FORMATS + (CONFIG_FORMAT,):
            raise CardError(f"unknown artifact format {self.format!r}; expected one of {ARTIFACT_FORMATS}")
        if "/" in self.file or "\\" in self.file or self.file.startswith("."):
            raise CardError(f"artifact file must be a plain file name, got {self.file!r}")
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise CardError(f"{self.file}: sha256 must be 64 lower-case hex digits, got {self.sha256!r}")
        if int(self.size) <= 0:
            raise CardError(f"{self.file}: size must be positive, got {self.size!r}")


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """A pretrained model's card (see the module docstring); ``default`` marks the demo's model."""

    name: str
    summary: str
    backbone: str
    backbone_params: dict
    embedding_size: int
    head: str
    head_params: dict
    input_spec: dict
    training: dict
    metrics: list
    licence: dict
    artifacts: dict
    #: The model folder's ``config.json`` (an :class:`Artifact`): backbone, its parameters, sizes, input spec.
    config: Artifact
    default: bool = False
    #: The card's version: a model package (``keras-arcface zoo pack``) carries it as its own version.
    version: str = "1.0.0"
    #: A model trained here to show a training recipe, below the zoo's quality bar: left out of ``zoo list``
    #: (listed with ``--all``), loadable by name with a warning that names its LFW figure.
    recipe_example: bool = False
    #: For a converted model: where the weights came from (package, file, sha256) and the command.
    origin: dict = None
    #: Per-face latency of its runtime files at batch 1 (scripts/card_rule_metrics.py):
    #: ``{"protocol", "hardware", "files": {format: {"1": {"median_ms", "p90_ms"}, "2": {...}}}}``.
    latency: dict = None
    #: The default verdict threshold's error rates (scripts/quality_edc.py --write-cards): ``{"far", "artifact",
    #: "threshold", "frr": {benchmark: rate}, "observed_far": {benchmark: rate}, "protocol"}``.
    operating_point: dict = None
    path: str = ""

    @property
    def commercial_use(self):
        """True when the card states that the licences of the weights and of the training data allow
        commercial use (as their providers state them; not legal advice)."""
        return bool(self.licence.get("commercial_use", False))

    @classmethod
    def from_file(cls, path):
        path = pathlib.Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise CardError(f"cannot read model card {path}: {error}") from None
        if data.get("name") != path.stem and "name" in data:
            raise CardError(f"model card {path} is named {data['name']!r}; the file must be {data['name']}.json")
        return cls.from_data(data, path)

    @classmethod
    def from_data(cls, data, path=None):
        """A card from its JSON data, validated (``path`` names it in errors)."""
        data = dict(data)
        where = path or f"for {data.get('name', '?')}"
        missing = [field for field in REQUIRED_FIELDS if field not in data]
        if missing:
            raise CardError(f"model card {where} lacks {missing}")
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise CardError(f"model card {where} has unknown fields {unknown}")
        artifacts = {fmt: Artifact(format=fmt, **spec) for fmt, spec in data.pop("artifacts").items()}
        if not artifacts:
            raise CardError(f"model card {where} lists no artifacts")
        config = Artifact(format=CONFIG_FORMAT, **data.pop("config"))
        return cls(artifacts=artifacts, config=config, path=str(path or ""), **data)

    def artifact(self, fmt):
        try:
            return self.artifacts[fmt]
        except KeyError:
            raise CardError(f"{self.name} has no {fmt!r} artifact; it has {sorted(self.artifacts)}") from None

    def file_spec(self, fmt):
        """The input spec (as data) of the ``fmt`` file: its own where the card records one, else the card's."""
        return self.artifact(fmt).input_spec or self.input_spec

    def metric(self, benchmark, fmt):
        """The card's ``benchmark`` entry for the ``fmt`` artifact, or None."""
        return next((m for m in self.metrics if m.get("benchmark") == benchmark and m.get("artifact") == fmt), None)

    def lfw_metric(self, fmt):
        """The card's LFW (10-fold, 6000 pairs) entry for the ``fmt`` artifact, or None."""
        return self.metric("LFW", fmt)

    def latency_ms(self, fmt, threads=2):
        """The median milliseconds per face of the ``fmt`` file at batch 1 with ``threads``, or None."""
        figure = ((self.latency or {}).get("files") or {}).get(fmt, {}).get(str(threads))
        return None if figure is None else float(figure["median_ms"])

    def thresholds(self, fmt):
        """Same-person thresholds for the ``fmt`` artifact: ``{"threshold", "source", "far", "far_source",
        "best_accuracy_threshold"}``.  ``threshold`` is the default operating point: the one measured for the
        false-accept rate :data:`OPERATING_FAR` where the card has it (in use most comparisons are of different
        people), else LFW's best-accuracy threshold; ``far`` maps "1e-3" and friends to the threshold measured
        for that rate.  The Keras entry stands in for a format the card measured no thresholds for."""
        from keras_arcface.runtime.reference import far_key

        metric = self.lfw_metric(fmt) or self.lfw_metric("keras") or {}
        measured = metric.get("artifact", fmt)
        best = metric.get("best_threshold")
        far = {key: float(value) for key, value in (metric.get("threshold_at_far") or {}).items()}
        operating = far_key(OPERATING_FAR)
        if operating in far:
            threshold = far[operating]
            source = f"{self.name} card: FAR {operating} on LFW's different-person pairs ({measured} artifact)"
        else:
            threshold = None if best is None else float(best)
            source = f"{self.name} card: best global threshold on LFW's 6000 pairs ({measured} artifact)"
        return {"threshold": threshold, "source": source, "far": far,
                "far_source": metric.get("threshold_at_far_protocol", ""),
                "best_accuracy_threshold": None if best is None else float(best)}

    def passes_gates(self, fmt):
        """The artifact's recorded parity meets its format's gate and its LFW accuracy is within
        ``ACCURACY_GATE`` of the Keras model's (the Keras weights themselves always pass)."""
        if fmt == "keras":
            return True
        metric, reference = self.lfw_metric(fmt), self.lfw_metric("keras")
        if metric is None or reference is None or fmt not in FORMATS:
            return False
        parity = metric.get("parity_to_original_min_cosine", metric.get("parity_min_cosine"))
        return (parity is not None and parity >= FORMATS[fmt].parity_gate
                and metric["accuracy_mean"] >= reference["accuracy_mean"] - ACCURACY_GATE)

    def quality_bar_failures(self):
        """Why the card is below the zoo's quality bar (docs/zoo.md), as sentences; empty when it meets it:
        a runtime file that passes its gates, at least ``QUALITY_BAR_LFW`` on LFW and ``QUALITY_BAR_HOLDOUT`` on
        the CelebA hold-out benchmark with that file, and licences stated."""
        fmt = self.runtime_format()
        if fmt is None:
            return ["no .onnx / .tflite file passes its parity and accuracy gates"]
        failures = []
        for benchmark, bar in (("LFW", QUALITY_BAR_LFW), (HOLDOUT_BENCHMARK, QUALITY_BAR_HOLDOUT)):
            metric = self.metric(benchmark, fmt)
            if metric is None:
                failures.append(f"no {benchmark} figure for its runtime file {fmt}")
            elif metric["accuracy_mean"] < bar:
                failures.append(f"{benchmark} {metric['accuracy_mean']:.2%} with {fmt}, under the bar of {bar:.1%}")
        if not self.licence.get("weights") or not self.licence.get("training_data"):
            failures.append("the licences of the weights and of the training data are not both stated")
        return failures

    def operating_point_summary(self):
        """``"FAR 1e-3 on LFW: threshold 0.3472, FRR 1.57 % on LFW, 9.70 % on CelebA hold-out"``, or None."""
        point = self.operating_point
        if not point:
            return None
        rates = ", ".join(f"{rate * 100:.2f} % on {benchmark}" for benchmark, rate in point["frr"].items())
        return f"FAR {point['far']} on LFW: threshold {point['threshold']:.4f}, false rejects {rates}"

    def lfw_summary(self):
        """``"LFW 82.38 %"`` of the Keras weights (the card's headline figure), or ``"no LFW figure"``."""
        metric = self.lfw_metric("keras")
        return f"LFW {metric['accuracy_mean'] * 100:.2f} %" if metric else "no LFW figure"

    def runtime_format(self):
        """The smallest .onnx / .tflite artifact that passes its gates and runs at full speed
        (``ExportFormat.full_speed``; any passing one where none does): what ``verify``, the Python
        ``FaceVerifier`` and the wheel use unless told otherwise; None when none passes."""
        passing = [fmt for fmt in self.artifacts if fmt != "keras" and self.passes_gates(fmt)]
        fast = [fmt for fmt in passing if FORMATS[fmt].full_speed] or passing
        return min(fast, key=lambda fmt: self.artifacts[fmt].size) if fast else None

    def to_dict(self):
        data = dataclasses.asdict(self)
        data.pop("path")
        if not data["recipe_example"]:
            data.pop("recipe_example")
        for optional in ("origin", "latency"):
            if data[optional] is None:
                data.pop(optional)
        for spec in [*data["artifacts"].values(), data["config"]]:
            spec.pop("format")
            if spec["input_spec"] is None:
                spec.pop("input_spec")
        return data


def default_by_rule(cards, tolerance=DEFAULT_RULE_TOLERANCE):
    """The name of the zoo's default model by the rule of docs/zoo.md: among the cards whose stated
    licences allow commercial use, those whose runtime file (:meth:`ModelCard.runtime_format`) is within
    ``tolerance`` of the best LFW accuracy and of the best CelebA hold-out accuracy of those runtime files,
    and of those the fastest at batch 1 with 2 threads (the card's ``latency``, measured in one run); where
    none is within ``tolerance`` of both, the one with the highest sum of the two.  A commercial card
    without those three figures raises :class:`CardError` naming the script to run."""
    figures = {}
    for name, card in sorted(cards.items()):
        fmt = card.runtime_format()
        if not card.commercial_use or fmt is None:
            continue
        lfw, holdout, latency = card.metric("LFW", fmt), card.metric(HOLDOUT_BENCHMARK, fmt), card.latency_ms(fmt)
        if lfw is None or holdout is None or latency is None:
            raise CardError(f"{name}: the default rule needs its runtime file {fmt}'s LFW and {HOLDOUT_BENCHMARK} "
                            f"accuracy and its 2-thread latency; run python scripts/card_rule_metrics.py "
                            f"(it measures every commercial-use card in one run)")
        figures[name] = (lfw["accuracy_mean"], holdout["accuracy_mean"], latency)
    if not figures:
        raise CardError("no card allows commercial use with a runtime file that passes its gates")
    best_lfw = max(lfw for lfw, _, _ in figures.values())
    best_holdout = max(holdout for _, holdout, _ in figures.values())
    qualified = [name for name, (lfw, holdout, _) in figures.items()
                 if lfw >= best_lfw - tolerance - 1e-9 and holdout >= best_holdout - tolerance - 1e-9]
    if not qualified:
        return max(figures, key=lambda name: figures[name][0] + figures[name][1])
    return min(qualified, key=lambda name: figures[name][2])


def cards_dir():
    """``$KERAS_ARCFACE_ZOO_CARDS``, else the cards installed with the package, else the checkout's ``zoo/``."""
    if os.environ.get(CARDS_ENV):
        return pathlib.Path(os.environ[CARDS_ENV])
    installed = pathlib.Path(__file__).parent / "cards"
    if installed.is_dir():
        return installed
    return pathlib.Path(__file__).resolve().parents[2] / "zoo"


def read_cards(directory=None):
    """{name: ModelCard} of every ``*.json`` card in ``directory`` (default :func:`cards_dir`)."""
    directory = pathlib.Path(directory) if directory else cards_dir()
    if not directory.is_dir():
        raise CardError(f"no model cards at {directory}; set {CARDS_ENV} to the zoo/ folder of a checkout")
    cards = {}
    for path in sorted(directory.glob("*.json")):
        card = ModelCard.from_file(path)
        cards[card.name] = card
    return cards
