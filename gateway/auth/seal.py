"""ARC sealing (RFC 8617) of the copies the gateway changed.

A notice in the body breaks the sender's DKIM signature, and with it DMARC at the district's
mail server or at Google Workspace / Microsoft 365 behind the gateway. Sealing the changed
copy, with a key the district publishes, lets those services trust the gateway's own
Authentication-Results (recorded before the change) once they list it as a trusted ARC sealer.

dkimpy signs; it reads the chain's validation status from our Authentication-Results header
(arc=pass/fail/none), which is on every copy of mail the gateway authenticated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dkim
import structlog

from gateway.config import Settings

log = structlog.get_logger("gateway.auth")


@dataclass(frozen=True, slots=True)
class Sealer:
    domain: str
    selector: str
    private_key: bytes  # PEM
    authserv_id: str

    @classmethod
    def from_file(cls, domain: str, selector: str, key: Path, authserv_id: str) -> Sealer:
        return cls(domain, selector, key.read_bytes(), authserv_id)

    def seal(self, content: bytes) -> bytes:
        """`content` with an ARC set on top; unchanged (and logged) if it cannot be sealed,
        e.g. a copy without our Authentication-Results (mail the gateway did not check)."""
        if b"Authentication-Results: " + self.authserv_id.encode() not in content:
            return content
        try:
            headers = dkim.arc_sign(content, self.selector.encode(), self.domain.encode(),
                                    self.private_key, self.authserv_id.encode())
        except Exception as exc:  # a malformed message or key: deliver unsealed, say so
            log.warning("arc_seal_failed", error=type(exc).__name__)
            return content
        return b"".join(headers) + content


def sealer_for(settings: Settings) -> Sealer | None:
    """The configured sealer (`authentication.arc_seal`), or None."""
    auth = settings.authentication
    if auth.arc_seal is None or not auth.enabled:
        return None
    return Sealer.from_file(auth.arc_seal.domain, auth.arc_seal.selector, auth.arc_seal.key,
                            auth.authserv_id or settings.smtp.hostname)
