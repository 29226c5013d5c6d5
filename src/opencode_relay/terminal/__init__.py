"""Terminals: opencode's PTYs, opened per session and principal, streamed over a WebSocket.

`service.Terminals` owns the records (who opened which PTY) and the live connections, and
closes those whose login or token ended; `bridge.Bridge` pumps one connection with its input
bounds.
"""
