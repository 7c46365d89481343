"""The HTTP face of :class:`~keras_arcface.service.core.FaceService` (FastAPI): the endpoints, API keys, the
request size limit, the per-request timeout, and errors as JSON ``{"error": ..., "status": ...}``, never a
traceback.  ``keras-arcface serve`` runs it under uvicorn (docs/serving.md)."""

import asyncio
import base64
import binascii
import contextlib
import os
import sys

from keras_arcface.errors import InputError
from keras_arcface.service.core import MAX_ENROLL_IMAGES, FaceService
from keras_arcface.service.settings import ServiceSettings, key_matches

#: Seconds /ready may take (a gallery that does not answer in time: 504, not ready), whatever ``--timeout`` is.
READY_TIMEOUT_S = 10.0


class RequestTooLarge(Exception):
    """A request body over the service's limit (said as 413 before or while it is read)."""


def _error(status, message, headers=None):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


class BodyLimit:
    """ASGI middleware: a request whose ``Content-Length``, or whose body as it streams in, passes ``limit``
    bytes is answered 413 and not read further."""

    def __init__(self, app, limit):
        self.app, self.limit = app, int(limit)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")

        def too_large():  # (made only when needed)
            return _error(413, f"the request is larger than this service's limit of {self.limit:,} bytes")

        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await too_large()(scope, receive, send)
        received, started = 0, False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise RequestTooLarge()
            return message

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except RequestTooLarge:
            if not started:
                await too_large()(scope, receive, send)


def _describe_body(*fields, repeated=None, extra=None):
    """The OpenAPI request body of an endpoint that takes images as multipart files or base64 JSON."""
    file_field = {"type": "string", "format": "binary"}
    text_field = {"type": "string", "format": "base64"}
    multipart, json_body = {}, {}
    for name in fields:
        multipart[name], json_body[name] = file_field, text_field
    if repeated:
        multipart[repeated] = {"type": "array", "items": file_field}
        json_body[repeated] = {"type": "array", "items": text_field}
    for name, schema in (extra or {}).items():
        multipart[name] = json_body[name] = schema
    required = [*fields, *([repeated] if repeated else [])]
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": multipart, "required": required}},
        "application/json": {"schema": {"type": "object", "properties": json_body, "required": required}}}}}


async def _read_body(request, image_fields=(), repeated=None):
    """``(images, options)``: ``images[field]`` a list of ``(name, bytes)``; ``options`` the other fields as given
    (strings from a form, JSON values from JSON)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    images, options = {}, {}
    wanted = (*image_fields, *([repeated] if repeated else []))
    if kind == "multipart/form-data":
        form = await request.form(max_files=MAX_ENROLL_IMAGES + 2, max_fields=64)
        for field, value in form.multi_items():
            if field in wanted and hasattr(value, "read"):
                name = (value.filename or field)[-200:]
                images.setdefault(field, []).append((name, await value.read()))
            elif field not in wanted:
                options[field] = value
    elif kind == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise InputError("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise InputError("the JSON body must be an object")
        for field, value in body.items():
            if field not in wanted:
                options[field] = value
                continue
            values = value if field == repeated and isinstance(value, list) else [value]
            for number, text in enumerate(values, 1):
                label = field if field != repeated else f"{field}[{number}]"
                text = str(text)
                if text.startswith("data:") and ";base64," in text[:100]:  # a data URL, as browsers make them
                    text = text.split(";base64,", 1)[1]
                try:
                    images.setdefault(field, []).append((label, base64.b64decode(text, validate=True)))
                except (binascii.Error, ValueError):
                    raise InputError(f"{label} is not base64") from None
    else:
        raise InputError("send images as multipart/form-data or as base64 in application/json, not "
                         f"{kind or 'nothing'}")
    for field in image_fields:
        if len(images.get(field, ())) != 1:
            raise InputError(f"one image is needed as {field!r}, got {len(images.get(field, ()))}")
    if repeated and not images.get(repeated):
        raise InputError(f"at least one image is needed as {repeated!r}")
    return images, options


def _number(options, name, kind=int):
    value = options.get(name)
    if value is None or value == "":
        return None
    if kind is bool:
        if isinstance(value, bool) or str(value).lower() in ("true", "false", "1", "0"):
            return value if isinstance(value, bool) else str(value).lower() in ("true", "1")
        raise InputError(f"{name} must be true or false, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number < 1 or str(number) != str(value).strip():
        raise InputError(f"{name} must be an integer >= 1, got {value!r}")
    return number


def create_app(settings=None):
    """The service's FastAPI app for ``settings`` (default: :class:`ServiceSettings` from the environment)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    from keras_arcface import __version__

    settings = settings or ServiceSettings.from_environment()
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(settings.max_pixels)  # before this process decodes an image
    service = FaceService(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        service.start()
        yield
        service.close()

    app = FastAPI(title="keras-arcface", version=__version__, lifespan=lifespan, description=(
        "Face verification, embedding and identification. Images as multipart files or base64 JSON. Writes "
        "(enroll, delete) need `Authorization: Bearer <key>`" + (", and so do reads." if settings.protect_reads
                                                                  else "; reads are open.")))
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.state.service = service

    @app.exception_handler(InputError)
    async def input_error(request, error):
        return _error(getattr(error, "status", 422), str(error))

    @app.exception_handler(HTTPException)
    async def http_error(request, error):
        return _error(error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, error):
        return _error(422, "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}"
                                     for e in error.errors()))

    @app.exception_handler(Exception)
    async def internal_error(request, error):
        print(f"keras-arcface serve: {request.method} {request.url.path} failed:", file=sys.stderr)
        import traceback

        traceback.print_exception(error, file=sys.stderr)
        return _error(500, "internal error: the service's log has the details")

    def require_key(request, write):
        if not write and not settings.protect_reads:
            return
        if not service.keys:
            raise HTTPException(403, "this service is read-only: it was started without an API key "
                                     "(KERAS_ARCFACE_API_KEYS or --api-key-file), which writes need")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key_matches(given.strip(), service.keys):
            raise HTTPException(401, "a valid API key is needed: Authorization: Bearer <key>",
                                headers={"WWW-Authenticate": "Bearer"})

    async def run(work, *args, timeout=settings.timeout_s):
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(service.pool, work, *args), timeout)
        except asyncio.TimeoutError:
            raise HTTPException(504, f"the request took longer than this service's limit of {timeout:g} s (an "
                                     "enrollment may still complete: sending it again adds nothing twice)") from None

    face_field = {"type": "integer", "minimum": 1}

    @app.get("/health", summary="The process is up (liveness)")
    async def health():
        return {"status": "alive"}

    @app.get("/ready", summary="The model is loaded and the gallery answers (readiness)")
    async def ready():
        return await run(service.readiness, timeout=READY_TIMEOUT_S)  # (its own limit: a probe, not a request)

    @app.post("/verify", summary="Are the faces of two images the same person?",
              openapi_extra=_describe_body("image_a", "image_b", extra={
                  "face_a": face_field, "face_b": face_field, "any_face": {"type": "boolean"}}))
    async def verify(request: Request):
        require_key(request, write=False)
        images, options = await _read_body(request, ("image_a", "image_b"))
        return await run(service.verify, images["image_a"][0], images["image_b"][0], _number(options, "face_a"),
                         _number(options, "face_b"), bool(_number(options, "any_face", bool)))

    @app.post("/embed", summary="The embedding of the chosen face of an image",
              openapi_extra=_describe_body("image", extra={"face": face_field}))
    async def embed(request: Request):
        require_key(request, write=False)
        images, options = await _read_body(request, ("image",))
        return await run(service.embed, images["image"][0], _number(options, "face"))

    @app.post("/identify", summary="Who is in an image: every face against the gallery",
              openapi_extra=_describe_body("image", extra={"face": face_field, "top_k": face_field}))
    async def identify(request: Request):
        require_key(request, write=False)
        images, options = await _read_body(request, ("image",))
        return await run(service.identify, images["image"][0], _number(options, "top_k"), _number(options, "face"))

    @app.post("/enroll", summary="Add an identity's photos to the gallery (all or none; needs a key)",
              openapi_extra=_describe_body(repeated="images", extra={"identity": {"type": "string"}}))
    async def enroll(request: Request):
        require_key(request, write=True)
        images, options = await _read_body(request, repeated="images")
        return await run(service.enroll, options.get("identity"), images["images"])

    @app.delete("/identities/{identity}", summary="Remove every face of an identity (needs a key)")
    async def remove(identity: str, request: Request):
        require_key(request, write=True)
        return await run(service.remove, identity)

    @app.get("/identities", summary="The identities the gallery holds, with their face counts")
    async def identities(request: Request):
        require_key(request, write=False)
        return await run(service.identities)

    return app


def app_from_environment():
    """uvicorn's factory in each worker process (``serve`` hands the settings over in the environment)."""
    return create_app(ServiceSettings.from_environment())
