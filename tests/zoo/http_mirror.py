"""A real HTTP mirror on 127.0.0.1 for the download tests, with scripted misbehaviour.

A request ``/<mode>/<model>/<file>`` serves ``<root>/<model>/<file>`` as follows; ``mode`` is one of
``ok``, ``slow`` (in 16 chunks, 100 ms apart), ``truncate`` (announces the full length, sends half,
closes), ``corrupt`` (one byte flipped), ``stall`` (headers and 10 bytes, then silence),
``404`` and ``500``.  ``requests`` counts every request by path.
"""

import collections
import http.server
import pathlib
import socket
import threading
import time


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        server = self.server
        with server.lock:
            server.requests[self.path] += 1
        parts = self.path.lstrip("/").split("/", 1)
        mode, rest = (parts + [""])[:2]
        if mode in ("404", "500"):
            self.send_error(int(mode))
            return
        path = server.root / rest
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        if mode == "corrupt":
            body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "truncate":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif mode == "stall":
            self.wfile.write(body[:10])
            self.wfile.flush()
            server.release.wait(30)
        elif mode == "slow":
            step = -(-len(body) // 16)
            for begin in range(0, len(body), step):
                self.wfile.write(body[begin:begin + step])
                self.wfile.flush()
                time.sleep(0.1)
        else:
            self.wfile.write(body)


class HttpMirror:
    """Serve ``root`` on 127.0.0.1 in a background thread; ``url(mode)`` is a mirror base URL."""

    def __init__(self, root):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.root = pathlib.Path(root)
        self.server.requests = collections.Counter()
        self.server.lock = threading.Lock()
        self.server.release = threading.Event()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.release.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def requests(self):
        return self.server.requests

    def url(self, mode="ok"):
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/{mode}"

    def count(self, model, file_name):
        """Requests for one file over every mode."""
        return sum(n for path, n in self.requests.items() if path.endswith(f"/{model}/{file_name}"))
