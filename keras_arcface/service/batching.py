"""One thread runs the model for every request of a service process: the faces of requests that arrive while it
is busy are embedded together, in one call (and a model that is not thread-safe, such as a TFLite interpreter,
is only ever called from that thread)."""

import concurrent.futures
import queue
import threading

import numpy as np

from keras_arcface.runtime.reference import ReferencedEmbedder

_STOP = (np.empty((0,)), None)  # put by close(): the model thread ends


class BatchingEmbedder(ReferencedEmbedder):
    """``embed(faces)`` as ``embedder``'s, from any thread: each call waits while one model thread embeds it with
    the faces of every other call waiting then, up to ``max_batch`` faces a model call (a call with more is one
    call alone).  ``max_batch=1`` embeds each call alone, in arrival order.  :meth:`close` stops the thread."""

    def __init__(self, embedder, max_batch=32):
        self.embedder, self.max_batch = embedder, int(max_batch)
        self.reference = embedder.reference
        self.calls = self.faces = 0  # model calls made and faces embedded: faces / calls is the batch
        self._waiting = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="embedding-batcher", daemon=True)
        self._thread.start()

    def embed(self, faces_rgb_uint8, batch_size=None):
        faces = np.asarray(faces_rgb_uint8)
        if faces.ndim == 3:
            return self.embed(faces[None])[0]
        result = concurrent.futures.Future()
        self._waiting.put((faces, result))
        return result.result()

    def _run(self):
        carried = None  # a call taken from the queue that did not fit the last batch: the next one starts with it
        while True:
            first, carried = carried or self._waiting.get(), None
            if first is _STOP:
                return
            batch, count = [first], len(first[0])
            while count < self.max_batch:
                try:
                    waiting = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if waiting is _STOP or count + len(waiting[0]) > self.max_batch:
                    carried = waiting
                    break
                batch.append(waiting)
                count += len(waiting[0])
            self._embed(batch)

    def _embed(self, batch):
        try:
            embeddings = self.embedder.embed(np.concatenate([faces for faces, _ in batch]))
        except BaseException as error:  # every caller of the batch hears why
            for _, result in batch:
                result.set_exception(error)
            return
        self.calls, self.faces = self.calls + 1, self.faces + len(embeddings)
        start = 0
        for faces, result in batch:
            result.set_result(embeddings[start:start + len(faces)])
            start += len(faces)

    def stats(self):
        """Model calls made, faces embedded, and their ratio (the mean batch)."""
        return {"model_calls": self.calls, "faces": self.faces,
                "mean_batch": round(self.faces / self.calls, 2) if self.calls else None}

    def close(self):
        self._waiting.put(_STOP)
        self._thread.join(timeout=60)
