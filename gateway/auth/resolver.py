"""The DNS resolver every authentication check uses: the configured servers, a timeout per
lookup, one bounded cache shared by SPF, DKIM, DMARC and ARC.

dnspython's synchronous resolver, called from the authentication threads (never on the event
loop). A temporary failure (timeout, SERVFAIL, no server answering) raises `DnsTemporary`;
a name that does not exist or has no record of the type is an empty answer, which the
protocols treat as "none" or a void lookup.
"""

from __future__ import annotations

import time

import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from gateway.config import AuthSettings

# Bytes of TXT data kept per answer: a record larger than any real SPF, DKIM or DMARC
# record is cut here rather than carried through the protocol parsers.
MAX_TXT_BYTES = 16 * 1024


class DnsTemporary(Exception):
    """The lookup did not get an answer (timeout, SERVFAIL, refused): try again later."""


class Resolver:
    """One per process and configuration; thread-safe (dnspython's LRUCache locks)."""

    def __init__(self, settings: AuthSettings):
        self.timeout = settings.timeout
        self._resolver = _make_resolver(settings)
        self._size = settings.cache_size
        # Positive answers by (name, type), until their TTL ends: dnspython's cache holds
        # them too, but a hit there still parses the name and builds a resolution (a third
        # of the cost of authenticating a message with a warm cache).
        self._recent: dict[tuple[str, str], dns.resolver.Answer] = {}

    def resolve(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        """The answer, None when the name or the type does not exist; DnsTemporary when no
        answer came within the timeout."""
        key = (name.lower(), rdtype)
        answer = self._recent.get(key)
        if answer is not None and answer.expiration > time.time():
            return answer
        answer = self._lookup(name, rdtype)
        if answer is None or answer.rrset is None:
            return None  # no such name, or no record of this type
        if len(self._recent) >= self._size:
            self._recent.clear()  # many names: start over (dnspython's LRU still holds)
        self._recent[key] = answer
        return answer

    def _lookup(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        try:
            return self._resolver.resolve(name, rdtype, search=False, lifetime=self.timeout,
                                          raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except (dns.exception.Timeout, dns.resolver.NoNameservers,
                dns.resolver.NoResolverConfiguration) as exc:
            raise DnsTemporary(f"{rdtype} {name}: {type(exc).__name__}") from exc
        except (dns.name.NameTooLong, dns.name.EmptyLabel, dns.name.LabelTooLong,
                dns.exception.SyntaxError):
            return None  # not a name that can exist: as NXDOMAIN

    def txt(self, name: str) -> list[bytes]:
        """Each TXT record at `name`, its strings joined (RFC 7208 3.3, RFC 6376 3.6.2.2)."""
        answer = self.resolve(name, "TXT")
        if answer is None or answer.rrset is None:  # (rrset: for the type checker)
            return []
        return [b"".join(rdata.strings)[:MAX_TXT_BYTES] for rdata in answer.rrset]


def _make_resolver(settings: AuthSettings) -> dns.resolver.Resolver:
    if settings.resolvers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port)
                                for host, port in settings.resolvers]
    else:
        resolver = dns.resolver.Resolver()  # the system's (/etc/resolv.conf)
    resolver.timeout = settings.timeout
    resolver.lifetime = settings.timeout
    resolver.retry_servfail = False
    resolver.cache = dns.resolver.LRUCache(settings.cache_size)
    return resolver
