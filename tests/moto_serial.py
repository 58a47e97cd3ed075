"""moto's server with requests handled one at a time.

moto evaluates DynamoDB condition expressions and applies the write in
separate steps without a lock, so two concurrent conditional writes can both
succeed - unlike DynamoDB, which guarantees they are atomic. The lease tests
depend on that guarantee, so this launcher serializes request handling
(connections stay concurrent). Usage: python moto_serial.py HOST PORT
"""

import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


class Serialized:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            # Materialize the body inside the lock: the backend work may be lazy.
            return list(self.app(environ, start_response))


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, Serialized(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
