"""What the ids in request paths look like: opencode's prefix, then up to 125 of [A-Za-z0-9_-].

The rule of ids.py, declared as path parameters so FastAPI checks it and the
OpenAPI document shows it. A path id that breaks it is answered 400 `bad_request` (errors.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from ..ids import MESSAGE_ID, PERMISSION_ID, QUESTION_ID, SESSION_ID, SHARE_ID, TERMINAL_ID

SessionId = Annotated[str, Path(pattern=SESSION_ID, description="A session id ('ses…')",
                                examples=["ses_3f2a9c0b1ffeAbCdEfGhIjKlMn"])]
MessageId = Annotated[str, Path(pattern=MESSAGE_ID, description="A message id ('msg…')",
                                examples=["msg_3f2a9c0b1001AbCdEfGhIjKlMn"])]
PermissionId = Annotated[str, Path(pattern=PERMISSION_ID,
                                   description="A pending permission request's id ('per…')",
                                   examples=["per_3f2a9c0b1001AbCdEfGhIjKlMn"])]
QuestionId = Annotated[str, Path(pattern=QUESTION_ID,
                                 description="A pending question's id ('que…')",
                                 examples=["que_3f2a9c0b1001AbCdEfGhIjKlMn"])]
TerminalId = Annotated[str, Path(pattern=TERMINAL_ID, description="A terminal's id ('pty…')",
                                 examples=["pty_215e59cb7001toKF73IqAsdkeC"])]
ShareId = Annotated[str, Path(pattern=SHARE_ID, description="A share link's id ('shr…')",
                              examples=["shr_9c0b1ffe3f2a"])]
