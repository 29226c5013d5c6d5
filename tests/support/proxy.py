"""A TCP proxy whose open connections can be cut, to break a stream for real (the browser's
event stream, the relay's upstream connection to opencode, or a Redis reply: `lose_exec_reply`)."""

from __future__ import annotations

import socket
import threading
import time

from opencode_relay.launch.embedded import free_port

# How redis-py (any RESP client) sends EXEC: an array of one bulk string.
EXEC = b"*1\r\n$4\r\nEXEC\r\n"

REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
           b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")


class CuttableProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._stopped = threading.Event()
        self._refuse_until = 0.0
        self._down = False
        self._lose_exec: bytes | None = None  # armed: the bytes the transaction must hold
        self.accepted = 0
        self.lost_replies = 0  # EXECs forwarded whose replies the client never got

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> CuttableProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._server.close()
        self.cut()

    def cut(self) -> int:
        """Closes every open connection (both ends); returns how many pairs were cut."""
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        return len(sockets) // 2

    def refuse(self, seconds: float) -> None:
        """For a while, answers new connections with HTTP 503 (EventSource then gives up)."""
        self._refuse_until = time.monotonic() + seconds

    def down(self) -> None:
        """Until up(): cuts every connection and drops new ones unanswered (the browser's
        fetches fail as on a network error)."""
        self._down = True
        self.cut()

    def up(self) -> None:
        self._down = False

    def lose_exec_reply(self, containing: bytes = b"") -> None:
        """Once: the next transaction sent through the proxy whose bytes hold `containing`
        reaches the server whole, EXEC included, and its reply never reaches the client: the
        client's side of that connection is cut as soon as the EXEC is forwarded (the server's
        side stays open until `stop`, so the server reads and applies all of it)."""
        with self._lock:
            self._lose_exec = containing

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.accepted += 1
            if self._down:
                client.close()
                continue
            if time.monotonic() < self._refuse_until:
                try:
                    client.recv(65536)
                    client.sendall(REFUSAL)
                finally:
                    client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            silenced = threading.Event()  # set: what the server sends goes nowhere
            threading.Thread(target=self._requests, args=(client, upstream, silenced),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, silenced),
                             daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket,
                  silenced: threading.Event) -> None:
        """Client to server; an armed `lose_exec_reply` watches each transaction go by."""
        sent = b""  # while armed: this connection's bytes since its last EXEC
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                if self._lose_exec is not None:
                    sent += data
                    if EXEC in sent[-len(data) - len(EXEC):]:
                        if self._take_exec(sent):
                            silenced.set()  # before the server can answer
                            upstream.sendall(data)
                            self._cut_one(client)
                            return
                        sent = b""
                upstream.sendall(data)
        except OSError:
            pass
        self._close_pair(client, upstream)

    def _take_exec(self, transaction: bytes) -> bool:
        with self._lock:
            if self._lose_exec is None or self._lose_exec not in transaction:
                return False
            self._lose_exec = None
            self.lost_replies += 1
            return True

    def _cut_one(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def _pipe(self, source: socket.socket, sink: socket.socket,
              silenced: threading.Event) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not silenced.is_set():
                    sink.sendall(data)
        except OSError:
            pass
        if not silenced.is_set():
            self._close_pair(source, sink)

    def _close_pair(self, one: socket.socket, other: socket.socket) -> None:
        for sock in (one, other):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self._lock:
            self._sockets.discard(one)
            self._sockets.discard(other)
