"""Who may call the relay and how much: tokens, logins, session ownership, rate limits.

`gate.Gate` is the one middleware every HTTP request passes; routes never check credentials
themselves. Ownership is enforced where sessions are looked up (`Relay.session`), and on the
global event stream by a per-subscriber filter.
"""
