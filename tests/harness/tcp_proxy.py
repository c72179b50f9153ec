"""A man in the middle for SSH tests: a TCP port on this machine that forwards its first
connection to one host and every later one to another."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections.abc import Iterator


class SwitchingProxy:
    """Forwards the first connection to ``first`` and later ones to ``later`` (both on ``port``),
    as an attacker would who lets pyinfra's own connection through and answers the next ones."""

    def __init__(self, first: str, later: str, port: int = 22) -> None:
        self.first, self.later, self.upstream_port = first, later, port
        self.later_connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):  # the listener was closed
            for accepted in itertools.count():
                client, _ = self._listener.accept()
                target = self.first if accepted == 0 else self.later
                upstream = socket.create_connection((target, self.upstream_port))
                for source, dest in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pump, args=(source, dest), daemon=True).start()
                self.later_connections = accepted


def _pump(source: socket.socket, dest: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(1 << 16):
            dest.sendall(data)
    with contextlib.suppress(OSError):
        dest.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def switching_proxy(first: str, later: str) -> Iterator[SwitchingProxy]:
    proxy = SwitchingProxy(first, later)
    try:
        yield proxy
    finally:
        proxy.close()
