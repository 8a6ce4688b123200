"""A userspace TCP proxy that adds latency and jitter, per direction (no `tc netem` here).

Each direction of each connection has a reader that stamps every chunk with the moment it
may leave (arrival + delay + jitter) and a writer that sends it then. Release times never go
backwards, so the byte stream keeps its order as TCP would. End-of-stream is delayed the same
way, so a half-close arrives after the last byte, as it would over a slow link.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field

_EOF = b""


@dataclass
class _Direction:
    """One way of one connection: chunks waiting for their release time."""

    src: socket.socket
    dst: socket.socket
    delay: float
    jitter: float
    rng: random.Random
    queue: deque = field(default_factory=deque)
    cond: threading.Condition = field(default_factory=threading.Condition)
    last_release: float = 0.0

    def read_loop(self) -> None:
        while True:
            try:
                data = self.src.recv(65536)
            except OSError:
                data = _EOF
            now = time.monotonic()
            spread = self.rng.uniform(-self.jitter, self.jitter) if self.jitter else 0.0
            release = max(self.last_release, now + max(0.0, self.delay + spread))
            self.last_release = release
            with self.cond:
                self.queue.append((release, data))
                self.cond.notify()
            if data == _EOF:
                return

    def write_loop(self) -> None:
        while True:
            with self.cond:
                while not self.queue:
                    self.cond.wait()
                release, data = self.queue.popleft()
            pause = release - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if data == _EOF:
                _quietly(self.dst.shutdown, socket.SHUT_WR)
                return
            try:
                self.dst.sendall(data)
            except OSError:
                _quietly(self.src.shutdown, socket.SHUT_RDWR)
                return


def _quietly(fn, *args) -> None:  # noqa: ANN001
    try:
        fn(*args)
    except OSError:
        pass


class DelayProxy:
    """Listen on 127.0.0.1 and forward to `target`, adding `up`/`down` seconds of delay.

    `up` applies to bytes from the client to the target, `down` to the replies; `jitter` is
    the half-width of a uniform spread added to each chunk's delay. RTT ~= up + down.
    """

    def __init__(self, target: tuple[str, int], up: float = 0.025, down: float = 0.025,
                 jitter: float = 0.0, seed: int = 7) -> None:
        self.target = target
        self.up, self.down, self.jitter = up, down, jitter
        self._rng = random.Random(seed)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stopped = False
        self.connections = 0
        self._accept = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept.start()

    def _accept_loop(self) -> None:
        while not self._stopped:
            try:
                client, _addr = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, upstream]
            self.connections += 1
            for direction in (
                _Direction(client, upstream, self.up, self.jitter,
                           random.Random(self._rng.random())),
                _Direction(upstream, client, self.down, self.jitter,
                           random.Random(self._rng.random())),
            ):
                for loop in (direction.read_loop, direction.write_loop):
                    t = threading.Thread(target=loop, daemon=True)
                    t.start()
                    self._threads.append(t)

    def stop(self) -> None:
        """Close the listener and every connection it carries."""
        self._stopped = True
        _quietly(self._listener.shutdown, socket.SHUT_RDWR)  # wakes the blocked accept()
        _quietly(self._listener.close)
        for s in self._sockets:
            _quietly(s.shutdown, socket.SHUT_RDWR)
            _quietly(s.close)
        self._accept.join(timeout=5)

    def __enter__(self) -> DelayProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
