"""A TCP proxy whose open connections can be cut, to break a stream for real (the browser's
event stream, or the relay's upstream connection to opencode)."""

from __future__ import annotations

import socket
import threading
import time

from opencode_relay.launch.embedded import free_port

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
        self.accepted = 0

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
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(sink)
