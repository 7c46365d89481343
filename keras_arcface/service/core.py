"""What the service does, without HTTP: :class:`FaceService` answers verify / embed / identify / enroll / remove
with the same fields as the command line's ``--json``; :mod:`keras_arcface.service.app` puts it on HTTP."""

import concurrent.futures
import hashlib
import io
import sys
import threading
import unicodedata

from keras_arcface.errors import InputError
from keras_arcface.service.settings import api_keys
from keras_arcface.service.store import NoGalleryError, ServedGallery

#: An identity is 1 to this many characters (a Milvus gallery's limit too), no control characters.
MAX_IDENTITY_LENGTH = 256
#: Photos one enrollment takes.
MAX_ENROLL_IMAGES = 64


class TooLargeError(InputError):
    """An image with more pixels than the service takes (a decompression bomb, or just too big)."""

    status = 413


class NotFoundError(InputError):
    """An identity the gallery does not hold."""

    status = 404


class NotReadyError(InputError):
    """The model is still loading, or failed to load (the message says why)."""

    status = 503


def decoded_image(name, data, max_pixels):
    """An uploaded image as RGB uint8, its size read from its header (Pillow) and refused above ``max_pixels``
    before anything is decoded; a format Pillow cannot read is left to OpenCV, whose own pixel limit the service
    sets to the same number (``OPENCV_IO_MAX_IMAGE_PIXELS``)."""
    from PIL import Image

    from keras_arcface.data.images import decode_image

    try:
        with Image.open(io.BytesIO(data)) as header:
            width, height = header.size
    except Image.DecompressionBombError as error:
        raise TooLargeError(f"{name}: {error}") from None
    except Exception:  # not a format Pillow knows (or not an image): OpenCV decides, under its limit
        width = height = 0
    if width * height > max_pixels:
        raise TooLargeError(f"{name}: {width} x {height} = {width * height:,} pixels, over this service's limit of "
                            f"{max_pixels:,}")
    return decode_image(data, source=name)


def checked_identity(identity):
    name = str(identity or "").strip()
    if not 1 <= len(name) <= MAX_IDENTITY_LENGTH or any(unicodedata.category(c).startswith("C") for c in name):
        raise InputError(f"an identity is 1 to {MAX_IDENTITY_LENGTH} characters with no control characters, got "
                         f"{name[:80]!r}")
    return name


class FaceService:
    """One service process's state, made from ``settings``
    (:class:`~keras_arcface.service.settings.ServiceSettings`): the API keys, the gallery, and the verifier, loaded
    in the background by :meth:`start` (``ready`` says when); a pool of ``settings.threads`` threads does the
    requests' work (each with its own face detector); one model thread embeds for all of them, batching
    concurrent requests (:class:`~keras_arcface.service.batching.BatchingEmbedder`)."""

    def __init__(self, settings):
        self.settings = settings
        self.keys = api_keys(settings)
        if settings.protect_reads and not self.keys:
            raise InputError("protect_reads needs an API key: set KERAS_ARCFACE_API_KEYS or api_key_file",
                             "--protect-reads needs an API key: set KERAS_ARCFACE_API_KEYS or --api-key-file")
        self.gallery = None if settings.gallery is None else ServedGallery(settings.gallery)
        self.pool = concurrent.futures.ThreadPoolExecutor(settings.threads, thread_name_prefix="request")
        self.verifier, self.failure = None, None
        self._loading = threading.Thread(target=self._load, name="model-loader", daemon=True)

    def start(self):
        self._loading.start()

    def _load(self):
        from keras_arcface.embedding import load_embedder
        from keras_arcface.service.batching import BatchingEmbedder
        from keras_arcface.verification import FaceVerifier

        try:
            current = None if self.gallery is None else self.gallery.read()
            held = current.model if current is not None and current.model else None
            embedder = load_embedder(self.settings.model or held)
            model = str(embedder.reference)
            if held and model != held:
                raise InputError(f"the gallery {self.settings.gallery} holds {held}'s embeddings: serve it with "
                                 f"--model {held}, not {model}")
            self.verifier = FaceVerifier(BatchingEmbedder(embedder, self.settings.max_batch),
                                         min_quality=self.settings.min_quality)
            print(f"keras-arcface serve: model {model} loaded", file=sys.stderr, flush=True)
        except Exception as error:  # said by /ready and in the log; the process stays up to say it
            self.failure = f"{type(error).__name__}: {error}"
            print(f"keras-arcface serve: the model did not load: {self.failure}", file=sys.stderr, flush=True)

    @property
    def model(self):
        return None if self.verifier is None else str(self.verifier.embedder.reference)

    def readiness(self):
        """``{"status": "ready", ...}``, or a :class:`NotReadyError` saying what is missing."""
        if self.failure is not None:
            raise NotReadyError(f"the model did not load: {self.failure}")
        if self.verifier is None:
            raise NotReadyError("loading the model")
        answer = {"status": "ready", "model": self.model, "gallery": self.settings.gallery,
                  "embedding": self.verifier.embedder.stats()}
        if self.gallery is not None:
            try:
                current = self.gallery.read()
            except Exception as error:
                raise NotReadyError(f"the gallery {self.settings.gallery} cannot be read: {error}") from None
            answer["faces"] = 0 if current is None else len(current)
        return answer

    def _verifier(self):
        if self.verifier is None:
            self.readiness()  # raises why not
        return self.verifier

    def _served_gallery(self):
        if self.gallery is None:
            raise NoGalleryError("this service has no gallery: start it with --gallery PATH or URI")
        return self.gallery

    def _image(self, name, data):
        return decoded_image(name, data, self.settings.max_pixels)

    def verify(self, image_a, image_b, face_a=None, face_b=None, any_face=False):
        """``image_a`` / ``image_b``: ``(name, bytes)``; the answer of ``verify --json``."""
        verifier = self._verifier()
        result = verifier.verify(self._image(*image_a), self._image(*image_b), face_a=face_a, face_b=face_b,
                                 any_face=any_face)
        return result.to_dict()

    def embed(self, image, face=None):
        """The unit embedding of the chosen face (or face number ``face``) of ``image`` (``(name, bytes)``)."""
        verifier = self._verifier()
        found = verifier.find_face(self._image(*image), name=image[0], face=face)
        embedding = verifier.embedder.embed(found.aligned[None])[0]
        return {"model": self.model, "embedding": [round(float(value), 7) for value in embedding],
                "dimensions": int(embedding.shape[0]), "face": found.to_dict()}

    def identify(self, image, top_k=None, face=None):
        """Who is in ``image`` (every face, or face number ``face``): the answer of ``identify --json``."""
        verifier = self._verifier()
        gallery = self._served_gallery().read()
        if gallery is None:
            raise NoGalleryError(f"the gallery {self.settings.gallery} holds no one yet: POST /enroll first")
        results = gallery.identify_faces(self._image(*image), top_k or self.settings.top_k, verifier, face=face)
        return gallery.identification(results, image[0], gallery.threshold, gallery.threshold_source, self.model)

    def enroll(self, identity, images):
        """Enrol ``identity`` from ``images`` (``[(name, bytes)]``), all or none: every photo must show a usable
        face (several faces: the one the verifier chooses, said in the answer), else nothing is enrolled."""
        import numpy as np

        from keras_arcface.gallery import enrolment_face

        verifier = self._verifier()
        served = self._served_gallery()
        identity = checked_identity(identity)
        if not 1 <= len(images) <= MAX_ENROLL_IMAGES:
            raise InputError(f"an enrollment takes 1 to {MAX_ENROLL_IMAGES} images, got {len(images)}")
        print(f"keras-arcface serve: enrolling {identity!r} from {len(images)} image(s)", file=sys.stderr,
              flush=True)
        faces, refused = [], []
        for name, data in images:
            try:
                faces.append(enrolment_face(verifier, name, image=self._image(name, data)))
            except InputError as error:
                refused.append(str(error))
        if refused:
            raise InputError(f"nothing enrolled: {len(refused)} of {len(images)} image(s) cannot be used: "
                             + "; ".join(refused))
        embeddings = verifier.embedder.embed(np.stack([face.aligned for face in faces]))
        contents = [f"sha256:{hashlib.sha256(data).hexdigest()}" for _, data in images]
        added, held = served.enroll(embeddings, identity, [name for name, _ in images], contents,
                                    [face.quality.score for face in faces], self.model, verifier.threshold,
                                    verifier.threshold_source)
        return {"identity": identity, "added": added, "already_held": held, "model": self.model,
                "faces": [face.to_dict() for face in faces]}

    def remove(self, identity):
        try:
            removed = self._served_gallery().remove(identity)
        except KeyError:
            raise NotFoundError(f"the gallery holds no identity {identity!r}") from None
        return {"identity": identity, "removed": removed}

    def identities(self):
        gallery = self._served_gallery().read()
        people = {} if gallery is None else gallery.people()
        return {"identities": people, "faces": sum(people.values()), "people": len(people),
                "model": None if gallery is None else gallery.model}

    def close(self):
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self.verifier is not None:
            self.verifier.embedder.close()
        if self.gallery is not None:
            self.gallery.close()
