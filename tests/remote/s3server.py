"""A real S3-compatible HTTP server on loopback (moto's, in a thread) that counts the requests it
answers, for the object-storage tests and bench/bench_remote.py.

    s3 = S3Server().start()
    os.environ.update(s3.env())          # what s3fs (botocore) reads: credentials and endpoint
    s3.fs().pipe_file("bucket/logs/run/events.out.tfevents.1", data)
    s3.reset(); ...; s3.counts           # Counter: requests, list, get, head, put, other
"""

import collections
import os
import threading


class _Counting:
    def __init__(self, app, counts, lock, server):
        self.app, self.counts, self.lock, self.server = app, counts, lock, server

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        parts = [p for p in path.split("/") if p]
        if method == "GET" and (len(parts) <= 1 or "list-type" in query):
            kind = "list"
        elif method == "GET":
            kind = "get"
        elif method == "HEAD":
            kind = "head"
        elif method in ("PUT", "POST"):
            kind = "put"
        else:
            kind = "other"
        with self.lock:
            self.counts[kind] += 1
            self.counts["requests"] += 1
            if kind == "get":
                self.server.gets.append((path, environ.get("HTTP_RANGE")))
        gate = self.server.gate
        if gate is not None and self.server.gate_when(kind, path):
            drop = self.server.drop_gated  # decided now: the test resets it once the gate opens
            self.server.held.set()
            gate.wait(60)  # a test holds these requests here (to kill a client in the middle)
            if drop:  # as if the client died before the request was complete
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"dropped by the test"]
        return self.app(environ, start_response)


class S3Server:
    def __init__(self):
        self.counts = collections.Counter()
        self.gets = []  # (path, Range header) of every object read
        self.gate = None  # a threading.Event: requests gate_when(kind, path) accepts wait until it is set
        self.gate_when = lambda kind, path: kind == "get"
        self.held = threading.Event()  # set when a read is waiting at the gate
        self.drop_gated = False  # gated requests are answered 503 instead of carried out
        self._lock = threading.Lock()
        self._server = None

    def start(self):
        import logging

        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

        class Quiet(MotoRequestHandler):
            def log_message(self, *args):
                pass

        app = _Counting(DomainDispatcherApplication(create_backend_app), self.counts, self._lock, self)
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def env(self) -> dict:
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_EC2_METADATA_DISABLED": "true"}

    def fs(self):
        import s3fs

        return s3fs.S3FileSystem(key="testing", secret="testing", client_kwargs={"endpoint_url": self.endpoint},
                                 skip_instance_cache=True, use_listings_cache=False)

    def reset(self):
        with self._lock:
            self.counts.clear()
            self.gets.clear()

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self.counts)

    def upload_tree(self, local_dir, prefix):
        """Copies every file under local_dir to s3://<prefix>/<relative path>."""
        fs = self.fs()
        for base, _, files in os.walk(local_dir):
            for name in files:
                full = os.path.join(base, name)
                with open(full, "rb") as f:
                    fs.pipe_file(f"{prefix}/{os.path.relpath(full, local_dir)}", f.read())

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server = None
