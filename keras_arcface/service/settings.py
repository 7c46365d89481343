"""What a service process is told: :class:`ServiceSettings` (the ``serve`` command's flags), the API keys, and
:func:`serve`, which starts uvicorn with one or more worker processes."""

import dataclasses
import hmac
import ipaddress
import json
import os
import pathlib

from keras_arcface.errors import InputError

#: Where worker processes read their settings (JSON; ``serve`` writes it) and the API keys.
SETTINGS_VARIABLE = "KERAS_ARCFACE_SERVE_SETTINGS"
KEYS_VARIABLE = "KERAS_ARCFACE_API_KEYS"
#: A key shorter than this is refused: it would not keep strangers out.
MIN_KEY_LENGTH = 16


@dataclasses.dataclass(frozen=True)
class ServiceSettings:
    """``model``: a zoo name or model file (default: the gallery's model, else the zoo's default); ``gallery``:
    a gallery file (``.npz``), a Milvus Lite ``.db`` or a ``milvus://host:port/collection`` (None: verify and
    embed only); ``api_key_file``: one key a line (``#`` comments), beside the ``KERAS_ARCFACE_API_KEYS``
    variable (comma-separated); ``protect_reads``: every endpoint but /health, /ready and the docs wants a key
    (writes always do); limits: ``max_request_bytes`` (whole request), ``max_pixels`` (each image, checked from
    its header before decoding), ``timeout_s`` (each request); ``max_batch``: faces one model call takes from
    concurrent requests (1: each request alone); ``threads``: requests a worker works on at once."""

    model: str = None
    gallery: str = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    api_key_file: str = None
    protect_reads: bool = False
    max_request_bytes: int = 16 * 2**20
    max_pixels: int = 40_000_000
    timeout_s: float = 30.0
    max_batch: int = 32
    threads: int = 4
    min_quality: float = None
    top_k: int = 5

    def __post_init__(self):
        checks = {"port": (self.port, 1, 65535), "workers": (self.workers, 1, 64),
                  "max_request_bytes": (self.max_request_bytes, 1024, 2**31),
                  "max_pixels": (self.max_pixels, 64 * 64, 2**31), "timeout_s": (self.timeout_s, 0.001, 3600),
                  "max_batch": (self.max_batch, 1, 1024), "threads": (self.threads, 1, 256),
                  "top_k": (self.top_k, 1, 1000)}
        for name, (value, low, high) in checks.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
                flag = "--timeout" if name == "timeout_s" else "--" + name.replace("_", "-")
                raise InputError(f"{name} must be in [{low}, {high}], got {value!r}",
                                 f"{flag} must be in [{low}, {high}], got {value!r}")
        if self.min_quality is not None and not 0.0 <= self.min_quality <= 1.0:
            raise InputError(f"min_quality must be in [0, 1], got {self.min_quality!r}",
                             f"--min-quality must be in [0, 1], got {self.min_quality!r}")
        if self.workers > 1 and self.gallery and str(self.gallery).endswith(".db"):
            raise InputError(f"a Milvus Lite file ({self.gallery}) serves one process: use --workers 1, a gallery "
                             "file (.npz) or a Milvus server (milvus://host:port/collection)")

    def to_environment(self):
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_environment(cls, environ=os.environ):
        if SETTINGS_VARIABLE not in environ:
            return cls()
        return cls(**json.loads(environ[SETTINGS_VARIABLE]))

    def is_loopback(self):
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


def api_keys(settings, environ=os.environ):
    """The keys that open the service: ``KERAS_ARCFACE_API_KEYS`` (comma-separated) and ``api_key_file``'s
    lines; each at least :data:`MIN_KEY_LENGTH` characters of printable ASCII."""
    keys = [key.strip() for key in environ.get(KEYS_VARIABLE, "").split(",") if key.strip()]
    if settings.api_key_file:
        path = pathlib.Path(settings.api_key_file)
        if not path.is_file():
            raise InputError(f"API key file {path} not found")
        keys += [line.strip() for line in path.read_text().splitlines()
                 if line.strip() and not line.strip().startswith("#")]
    for number, key in enumerate(keys, 1):
        if len(key) < MIN_KEY_LENGTH or not key.isascii() or not key.isprintable() or " " in key:
            raise InputError(f"API key {number} is not {MIN_KEY_LENGTH}+ printable ASCII characters without spaces "
                             "(make one with: python -c \"import secrets; print(secrets.token_urlsafe(32))\")")
    return tuple(key.encode() for key in keys)


def key_matches(given, keys):
    """``given`` is one of ``keys``, compared in constant time against every key (the time taken says nothing
    of which key, or how much of one, matched)."""
    given = given.encode() if isinstance(given, str) else given
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key)
    return matched


def serve(settings):
    """Run the service until stopped (Ctrl-C, SIGTERM): uvicorn with ``settings.workers`` processes, each making
    its app from the settings handed over in the environment."""
    import uvicorn

    api_keys(settings)  # a bad key stops the start here, said once, not in every worker
    os.environ[SETTINGS_VARIABLE] = settings.to_environment()
    uvicorn.run("keras_arcface.service.app:app_from_environment", factory=True, host=settings.host,
                port=settings.port, workers=settings.workers, log_level="info", timeout_graceful_shutdown=30,
                server_header=False)
