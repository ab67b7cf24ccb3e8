"""The one way notify-svc sends a request out: SSRF-safe by construction (docs/webhooks.md, "SSRF").

A webhook URL is chosen by an admin, and an adapter's endpoint by configuration; either could
point at the metadata service (169.254.169.254), a database on the pod network or the service's
own admin port. So every outbound request goes through ``Egress``, which:

- takes ``http`` and ``https`` only, without credentials in the URL;
- checks the destination *address*, not the name: literal addresses before connecting, and every
  address a name resolves to inside the connector (``GuardedResolver``), refusing loopback,
  private, shared (CGNAT), link-local, multicast, unspecified, reserved, IPv4-mapped/compatible
  and every other address that is not globally routable, unless an operator allow-listed it;
- connects to exactly the addresses it checked: aiohttp connects to what the resolver returned
  (the name still goes into the Host header and TLS SNI), so there is no second lookup for a
  rebinding DNS server to answer differently;
- never follows a redirect (a 3xx is handed back as such: a failure with its status);
- keeps timeouts short, ignores proxy variables from the environment, asks for no compression
  and reads at most ``max_response_bytes`` of an answer, then drops the connection.

Names are looked up by the system resolver, or, when an operator names DNS servers
(``NOTIFY_EGRESS_NAMESERVERS``), by asking those servers directly (``NameserverResolver``); the
answers are checked the same way either way.

The checks are pure functions (``check_address``, ``check_url``, ``parse_allow_networks``,
``parse_nameservers``) so they are table-tested without a network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict, CIMultiDictProxy

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_MAX_RESPONSE_BYTES = 65_536


class EgressRefused(Exception):
    """The policy refuses this destination; ``reason`` says why (safe to show to an admin)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EgressError(Exception):
    """The request could not be made or completed (DNS failure, refused connection, timeout,
    TLS error, broken answer): worth retrying later, unlike a refusal."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EgressResponse:
    """What came back. ``body_prefix`` holds at most the configured number of bytes;
    ``truncated`` says the answer was longer (the rest was never read)."""

    status: int
    headers: CIMultiDictProxy[str]
    body_prefix: bytes
    truncated: bool = False

    @property
    def ok(self) -> bool:
        """2xx only: a redirect is a failure too (it is never followed)."""
        return 200 <= self.status < 300

    @property
    def is_redirect(self) -> bool:
        return 300 <= self.status < 400


# ---- the address policy (pure) ---------------------------------------------------------------

_V4_REFUSED: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), reason) for net, reason in (
        ("0.0.0.0/8", "unspecified / 'this network' address (0.0.0.0/8)"),
        ("127.0.0.0/8", "loopback address"),
        ("10.0.0.0/8", "private address (RFC 1918)"),
        ("172.16.0.0/12", "private address (RFC 1918)"),
        ("192.168.0.0/16", "private address (RFC 1918)"),
        ("100.64.0.0/10", "shared address space (CGNAT, RFC 6598)"),
        ("169.254.0.0/16", "link-local address (incl. cloud metadata)"),
        ("224.0.0.0/4", "multicast address"),
        ("240.0.0.0/4", "reserved address (incl. broadcast)"),
        # listed rather than left to ``is_global``, whose answer for these moved between
        # Python versions
        ("192.0.0.0/24", "address not globally routable (IETF protocol assignments)"),
        ("192.0.2.0/24", "address not globally routable (documentation)"),
        ("198.51.100.0/24", "address not globally routable (documentation)"),
        ("203.0.113.0/24", "address not globally routable (documentation)"),
        ("198.18.0.0/15", "address not globally routable (benchmarking)"),
        ("192.88.99.0/24", "address not globally routable (deprecated 6to4 relay anycast)"),
    ))

_V6_UNSPECIFIED = ipaddress.IPv6Address("::")
_V6_LOOPBACK = ipaddress.IPv6Address("::1")
_V6_REFUSED: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), reason) for net, reason in (
        ("::ffff:0:0/96", "IPv4-mapped IPv6 address"),
        ("::/96", "IPv4-compatible IPv6 address (deprecated)"),
        ("2001::/32", "Teredo tunnel address"),
        ("fc00::/7", "unique local address (private IPv6)"),
        ("fe80::/10", "link-local address"),
        ("fec0::/10", "site-local address (deprecated)"),
        ("ff00::/8", "multicast address"),
    ))
#: prefixes that carry an IPv4 address in their last 32 bits, reached through a translator
_V6_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_V6_6TO4 = ipaddress.IPv6Network("2002::/16")


def parse_allow_networks(text: str | None) -> tuple[IPNetwork, ...]:
    """``"127.0.0.1/32, 10.20.0.0/16"`` → networks. A bare address is a single-host network;
    host bits are tolerated (``127.0.0.1/8`` is ``127.0.0.0/8``). Raises ``ValueError`` naming
    the entry that is not a network, so a typo stops the service at start-up instead of
    silently allowing nothing (or everything)."""
    networks: list[IPNetwork] = []
    for raw in (text or "").replace(";", ",").split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"not a network (CIDR or address): {item!r}") from exc
    return tuple(networks)


def parse_nameservers(text: str | None) -> tuple[tuple[str, int], ...]:
    """``"10.0.0.53, 127.0.0.1:5353, [fd00::53]:53"`` → ``(address, port)`` pairs, port 53 when
    none is given (a bare IPv6 address takes no port; bracket it to give one). Addresses only:
    a DNS server known by a name would need a lookup of its own, through the resolver this
    setting replaces. Raises ``ValueError`` naming the entry, so a typo stops the service at
    start-up instead of silently falling back to the system resolver."""
    servers: list[tuple[str, int]] = []
    for raw in (text or "").replace(";", ",").split(","):
        item = raw.strip()
        if not item:
            continue
        host, port_text = item, None
        if item.startswith("["):
            host, closed, rest = item[1:].partition("]")
            if not closed or (rest and not rest.startswith(":")):
                raise ValueError(f"not a DNS server address (ip, ip:port or [ipv6]:port): {item!r}")
            port_text = rest[1:] if rest else None
        elif item.count(":") == 1:
            host, port_text = item.split(":")
        try:
            address = ipaddress.ip_address(host)
        except ValueError as exc:
            raise ValueError(f"not a DNS server address (ip, ip:port or [ipv6]:port): {item!r}") from exc
        if port_text is not None and not (port_text.isascii() and port_text.isdigit()
                                          and 1 <= int(port_text) <= 65_535):
            raise ValueError(f"not a DNS server port (1-65535): {item!r}")
        servers.append((str(address), 53 if port_text is None else int(port_text)))
    return tuple(servers)


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a translated or tunnelled IPv6 address reaches, if any."""
    if any(ip in net for net in _V6_NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _V6_6TO4:
        return ip.sixtofour
    return None


def check_address(ip: str | IPAddress, allow: Sequence[IPNetwork] = ()) -> str | None:
    """Why the policy refuses to connect to ``ip``, or None when it may.

    The allow-list is compared with the address exactly as given: an operator who allows
    ``127.0.0.1/32`` does not thereby allow ``::ffff:127.0.0.1``."""
    try:
        address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    except ValueError:
        return f"not an IP address: {ip!r}"
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
    if any(address in net for net in allow):
        return None
    if isinstance(address, ipaddress.IPv4Address):
        for net, reason in _V4_REFUSED:
            if address in net:
                return reason
    else:
        if address == _V6_UNSPECIFIED:
            return "unspecified address (::)"
        if address == _V6_LOOPBACK:
            return "loopback address"
        for net, reason in _V6_REFUSED:
            if address in net:
                return reason
        embedded = _embedded_v4(address)
        if embedded is not None:
            inner = check_address(embedded)
            if inner is not None:
                return f"IPv6 address that reaches {embedded}: {inner}"
            return None
    if not address.is_global:
        return "address not globally routable (reserved, documentation or special-purpose range)"
    return None


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``2130706433``, ``0x7f.1``, ``127.1``: forms the C resolver turns into an address. Parsed
    here without any lookup so the check at save time sees the address they mean."""
    if not host or any(c not in "0123456789abcdefxABCDEFX." for c in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _is_localhost_name(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def parse_url(url: str) -> yarl.URL:
    """The URL, or ``EgressRefused`` when it is not one we would ever request."""
    if not isinstance(url, str) or not url or len(url) > 2048:
        raise EgressRefused("the URL is empty or longer than 2048 characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise EgressRefused("the URL contains whitespace or control characters")
    try:
        parsed = yarl.URL(url)
    except (ValueError, TypeError) as exc:
        raise EgressRefused("not a valid URL") from exc
    scheme = (parsed.scheme or "").lower()
    if scheme not in ALLOWED_SCHEMES:
        raise EgressRefused(f"scheme {scheme or '(none)'!r} is not allowed (http or https only)")
    if not parsed.raw_host:
        raise EgressRefused("the URL has no host")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise EgressRefused("credentials in the URL are not allowed")
    try:
        parsed.port  # noqa: B018  (an out-of-range port raises here)
    except ValueError as exc:
        raise EgressRefused("invalid port") from exc
    return parsed


def check_url(url: str, allow: Sequence[IPNetwork] = ()) -> str | None:
    """Everything about ``url`` that can be decided without DNS: the scheme, credentials,
    ``localhost`` names, and literal addresses (legacy numeric IPv4 forms included). None when
    nothing is wrong *so far*: a name is checked again, address by address, at each connection."""
    try:
        parsed = parse_url(url)
    except EgressRefused as refused:
        return refused.reason
    host = (parsed.raw_host or "").rstrip(".").lower()
    if _is_localhost_name(host):
        return "localhost names are refused (allow-list an address and use it literally)"
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = _legacy_ipv4(host)
    if literal is not None:
        reason = check_address(literal, allow)
        return None if reason is None else f"{literal}: {reason}"
    return None


# ---- the connector's resolver ----------------------------------------------------------------

class GuardedResolver(AbstractResolver):
    """Resolves through ``inner`` and hands aiohttp only addresses the policy accepts.

    aiohttp connects to the addresses a resolver returns, so checking them here is checking
    what is connected to: there is no window between the check and the connection, and no
    second lookup. A name with any refused address is refused as a whole (a mix of public and
    internal answers is an attack or a misconfiguration; either way the admin should know)."""

    def __init__(self, inner: AbstractResolver, allow: Sequence[IPNetwork]) -> None:
        self._inner = inner
        self._allow = tuple(allow)

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        if _is_localhost_name(host.rstrip(".").lower()):
            raise EgressRefused("localhost names are refused (allow-list an address and use it literally)")
        results = await self._inner.resolve(host, port, family)
        if not results:
            raise EgressError(f"{host} did not resolve")
        for result in results:
            reason = check_address(result["host"], self._allow)
            if reason is not None:
                raise EgressRefused(f"{host} resolves to {result['host']}: {reason}")
        return results

    async def close(self) -> None:
        await self._inner.close()


class NameserverResolver(AbstractResolver):
    """Looks names up by asking the configured DNS servers (dnspython), not the system resolver.

    For deployments whose receivers are named in an internal zone that the host's resolver does
    not serve, for closed networks where no DNS question may leave, and for tests that control
    DNS. Only DNS is asked: no hosts file, no search domains (a webhook URL names a host in full).
    Answers are not cached, and ``GuardedResolver`` checks every one of them as it would the
    system resolver's. A DNS failure is an ``OSError``, as ``AbstractResolver`` asks, so the
    egress reports it as a network error (retried later), never as a refusal."""

    def __init__(self, nameservers: Sequence[tuple[str, int]], *, lifetime_s: float = 3.0) -> None:
        if not nameservers:
            raise ValueError("NameserverResolver needs at least one DNS server")
        self._resolver = dns.asyncresolver.Resolver(configure=False)
        self._resolver.nameservers = [dns.nameserver.Do53Nameserver(address, port) for address, port in nameservers]
        self._resolver.lifetime = lifetime_s
        self._resolver.timeout = min(2.0, lifetime_s)

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        try:
            answer = await self._resolver.resolve_name(host, family=family)
        except dns.resolver.NXDOMAIN as exc:
            raise OSError(None, f"{host}: no such name") from exc
        except dns.resolver.NoAnswer as exc:
            raise OSError(None, f"{host}: no address") from exc
        except dns.exception.Timeout as exc:
            raise OSError(None, f"{host}: the DNS servers did not answer in time") from exc
        except dns.exception.DNSException as exc:
            raise OSError(None, f"{host}: DNS lookup failed ({type(exc).__name__})") from exc
        return [ResolveResult(hostname=host, host=address, port=port, family=address_family, proto=0,
                              flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
                for address, address_family in answer.addresses_and_families()]

    async def close(self) -> None:
        return None


# ---- the client -------------------------------------------------------------------------------

_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "accept-encoding"})


class Egress:
    """A shared outbound HTTP client (one connection pool) with the policy above.

    ``resolver`` is the lookup to guard (tests pass a fake one that controls DNS); else, with
    ``nameservers``, those DNS servers are asked (``NameserverResolver``); by default the system
    resolver, in a thread. Create it inside the running event loop; ``close`` it at shutdown."""

    def __init__(self, *, allow_networks: Iterable[IPNetwork] = (), resolver: AbstractResolver | None = None,
                 nameservers: Sequence[tuple[str, int]] = (),
                 connect_timeout_s: float = 3.0, total_timeout_s: float = 10.0,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES, max_connections: int = 100,
                 user_agent: str = "helpdesk-notify/0.1") -> None:
        self.allow = tuple(allow_networks)
        self.max_response_bytes = max_response_bytes
        self._timeout = aiohttp.ClientTimeout(total=total_timeout_s, connect=connect_timeout_s,
                                              sock_connect=connect_timeout_s, sock_read=total_timeout_s)
        if resolver is None:
            resolver = (NameserverResolver(nameservers, lifetime_s=connect_timeout_s) if nameservers
                        else aiohttp.ThreadedResolver())
        self._resolver = GuardedResolver(resolver, self.allow)
        self._max_connections = max_connections
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Any, *, resolver: AbstractResolver | None = None) -> Egress:
        return cls(allow_networks=parse_allow_networks(settings.webhook_allow_networks), resolver=resolver,
                   nameservers=parse_nameservers(settings.egress_nameservers),
                   connect_timeout_s=settings.egress_connect_timeout_s,
                   total_timeout_s=settings.egress_total_timeout_s,
                   max_response_bytes=settings.egress_max_response_bytes)

    def check_url(self, url: str) -> str | None:
        return check_url(url, self.allow)

    def _session_or_new(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=self._resolver, limit=self._max_connections,
                                             use_dns_cache=False, family=socket.AF_UNSPEC)
            # trust_env=False: an HTTP(S)_PROXY variable would send the request to a proxy that
            # resolves the name itself, around the check; auto_decompress=False: a small
            # compressed answer must not inflate past the read bound inside the client
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout, trust_env=False,
                                                  auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                                                  headers={"User-Agent": self._user_agent})
        return self._session

    async def post(self, url: str, body: bytes, headers: Mapping[str, str] | None = None) -> EgressResponse:
        return await self.request("POST", url, body=body, headers=headers)

    async def get(self, url: str, headers: Mapping[str, str] | None = None) -> EgressResponse:
        return await self.request("GET", url, headers=headers)

    async def request(self, method: str, url: str, *, body: bytes | None = None,
                      headers: Mapping[str, str] | None = None,
                      max_response_bytes: int | None = None) -> EgressResponse:
        """One request, no redirects followed. Raises ``EgressRefused`` (policy) or
        ``EgressError`` (network); any HTTP status is an ``EgressResponse``. Error reasons name
        the host at most, never the URL: provider URLs carry access tokens in their queries."""
        reason = self.check_url(url)
        if reason is not None:
            raise EgressRefused(reason)
        parsed = parse_url(url)
        sent_headers = {k: v for k, v in (headers or {}).items() if k.lower() not in _HOP_HEADERS}
        sent_headers["Accept-Encoding"] = "identity"
        session = self._session_or_new()
        try:
            async with session.request(method, parsed, data=body, headers=sent_headers, allow_redirects=False,
                                       max_redirects=0) as response:
                prefix, truncated = await self._read_prefix(response, max_response_bytes or self.max_response_bytes)
                if truncated:
                    response.close()  # the rest stays unread: drop the connection, not the pool
                return EgressResponse(status=response.status, headers=CIMultiDictProxy(CIMultiDict(response.headers)),
                                      body_prefix=prefix, truncated=truncated)
        except EgressRefused:
            raise
        except EgressError:
            raise
        except (TimeoutError, asyncio.TimeoutError) as exc:
            raise EgressError("timed out") from exc
        except aiohttp.InvalidURL as exc:
            raise EgressRefused("not a valid URL") from exc
        except aiohttp.ClientConnectorError as exc:
            raise EgressError(f"could not connect: {exc.os_error.strerror or type(exc.os_error).__name__}") from exc
        except aiohttp.ClientError as exc:
            raise EgressError(f"request failed: {type(exc).__name__}") from exc
        except OSError as exc:
            raise EgressError(f"request failed: {exc.strerror or type(exc).__name__}") from exc

    @staticmethod
    async def _read_prefix(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = await response.content.read(limit - size)
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)
            size += len(chunk)
        # at the limit: call it truncated unless the answer visibly ended there (waiting for
        # one more byte could hold the connection until the timeout)
        return b"".join(chunks), not response.content.at_eof()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
