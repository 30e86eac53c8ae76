"""A capture upstream for the quick start and tests: stores every delivered message as .eml.

Each message is written as `<time>-<n>.eml` (exact bytes received) with a `.json` sidecar
holding the envelope, so a newcomer can watch what the gateway relays without a mail server.
Files are written to a temporary name and renamed, so a reader never sees half a message.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


class CaptureHandler:
    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._counter = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{next(self._counter):06d}"
        content = envelope.original_content or b""
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                "peer": list(session.peer) if session.peer else None, "size": len(content)}
        await asyncio.to_thread(self._write, name, content, meta)
        return f"250 2.0.0 Ok: captured as {name}"

    def _write(self, name: str, content: bytes, meta: dict[str, Any]) -> None:
        for suffix, data in ((".json", json.dumps(meta).encode()), (".eml", content)):
            final = self.directory / f"{name}{suffix}"
            tmp = final.with_suffix(suffix + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, final)


async def run_sink(host: str, port: int, directory: Path) -> None:
    handler = CaptureHandler(directory)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, enable_SMTPUTF8=True, decode_data=False, ident="gateway-sink"),
        host=host, port=port)
    print(f"gateway sink: listening on {host}:{port}, writing to {directory}", flush=True)
    async with server:
        await server.serve_forever()
