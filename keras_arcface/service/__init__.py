"""``keras-arcface serve``: verification, embedding, identification and a gallery over HTTP (FastAPI on uvicorn;
``pip install keras-arcface[serve]``).

    keras-arcface serve --gallery faces.npz          # http://127.0.0.1:8000, the OpenAPI page at /docs

:mod:`~keras_arcface.service.settings` (the flags, the API keys, :func:`serve`), :mod:`~keras_arcface.service.core`
(what the service does, without HTTP), :mod:`~keras_arcface.service.app` (the HTTP app),
:mod:`~keras_arcface.service.store` (the gallery shared by the workers), :mod:`~keras_arcface.service.batching`
(one model thread for concurrent requests), :mod:`~keras_arcface.service.process` (a service started from
Python).  docs/serving.md: the endpoints, the keys and limits, the process model, load figures, deployment.
"""
