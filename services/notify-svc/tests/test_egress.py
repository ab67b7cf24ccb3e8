"""The SSRF policy and the egress client.

No test here sends a packet to an address outside 127.0.0.0/8: refused addresses are never
connected to (that is what is being proved), names are resolved by a fake resolver or by a DNS
server of the test's own on 127.0.0.1 (local_dns.py), and the receivers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import socket
import sys
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver

from notify_svc.egress import (
    Egress,
    EgressError,
    EgressRefused,
    NameserverResolver,
    check_address,
    check_url,
    parse_allow_networks,
    parse_nameservers,
)

pytestmark = pytest.mark.timeout(120)  # a hang guard: property tests of 300 examples take 30 s and more on a loaded 2-core runner

LOOPBACK_ONLY = parse_allow_networks("127.0.0.1/32")


# ---- the address policy -----------------------------------------------------------------------

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("0.0.0.0", "0.0.0.0/8"),
    ("0.1.2.3", "0.0.0.0/8"),
    ("::", "unspecified"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "CGNAT"),
    ("100.127.255.254", "CGNAT"),
    ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("fec0::1", "site-local"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("::ffff:127.0.0.1", "IPv4-mapped"),
    ("::ffff:8.8.8.8", "IPv4-mapped"),
    ("::ffff:169.254.169.254", "IPv4-mapped"),
    ("::127.0.0.1", "IPv4-compatible"),
    ("64:ff9b::7f00:1", "reaches 127.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "reaches 169.254.169.254"),
    ("2002:7f00:1::", "reaches 127.0.0.1"),
    ("2002:c0a8:101::1", "reaches 192.168.1.1"),
    ("2001::1", "Teredo"),
    ("192.0.2.1", "not globally routable"),
    ("198.51.100.7", "not globally routable"),
    ("203.0.113.9", "not globally routable"),
    ("198.18.0.1", "not globally routable"),
    ("192.0.0.8", "not globally routable"),
    ("2001:db8::1", "not globally routable"),
    ("100::1", "not globally routable"),
]


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_refused_addresses(address: str, why: str) -> None:
    reason = check_address(address)
    assert reason is not None and why in reason


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111",
                                     "2a00:1450:4001:80b::200e", "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_pass(address: str) -> None:
    assert check_address(address) is None


@pytest.mark.parametrize(("allow", "address", "allowed"), [
    ("127.0.0.1/32", "127.0.0.1", True),
    ("127.0.0.1/32", "127.0.0.2", False),
    ("127.0.0.1", "127.0.0.1", True),            # a bare address is a /32
    ("127.0.0.0/8", "127.9.9.9", True),
    ("10.20.0.0/16", "10.20.3.4", True),
    ("10.20.0.0/16", "10.21.0.1", False),
    ("10.20.0.0/16, 192.168.5.0/24", "192.168.5.9", True),
    ("fd00:1::/32", "fd00:1::5", True),
    ("fd00:1::/32", "fd00:2::5", False),
    ("127.0.0.1/32", "::ffff:127.0.0.1", False),  # the mapped form is not the address listed
    ("::ffff:127.0.0.1/128", "::ffff:127.0.0.1", True),
    ("127.0.0.1/32", "::1", False),
])
def test_allow_list(allow: str, address: str, allowed: bool) -> None:
    assert (check_address(address, parse_allow_networks(allow)) is None) is allowed


@pytest.mark.parametrize(("text", "count"), [("", 0), ("  ", 0), (None, 0), ("127.0.0.1/32", 1),
                                             ("10.0.0.0/8,fd00::/8", 2), (" 10.0.0.0/8 ; 127.0.0.1 ,", 2),
                                             ("127.0.0.1/8", 1)])
def test_parse_allow_networks(text: str | None, count: int) -> None:
    assert len(parse_allow_networks(text)) == count


@pytest.mark.parametrize("text", ["10.0.0.0/33", "localhost", "10.0.0.0/8,nope", "*"])
def test_parse_allow_networks_refuses_typos(text: str) -> None:
    with pytest.raises(ValueError):
        parse_allow_networks(text)


def test_allow_list_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from notify_svc.config import Settings

    monkeypatch.setenv("WEBHOOK_ALLOW_NETWORKS", "127.0.0.1/32")
    assert Settings().webhook_allow_networks == "127.0.0.1/32"
    monkeypatch.setenv("NOTIFY_WEBHOOK_ALLOW_NETWORKS", "10.0.0.0/8")
    assert Settings().webhook_allow_networks == "10.0.0.0/8"  # the prefixed name wins
    monkeypatch.setenv("NOTIFY_WEBHOOK_ALLOW_NETWORKS", "10.0.0.0/80")
    with pytest.raises(ValueError):
        Settings()


# ---- URLs (decided without DNS) ---------------------------------------------------------------

@pytest.mark.parametrize(("url", "why"), [
    ("ftp://example.com/x", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://example.com/", "scheme"),
    ("javascript:alert(1)", "scheme"),
    ("example.com/hook", "scheme"),
    ("http://localhost/hook", "localhost"),
    ("http://LOCALHOST./hook", "localhost"),
    ("https://api.localhost:8443/hook", "localhost"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "IPv4-mapped"),
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.1.2.3/", "private"),
    ("http://0.0.0.0:8085/", "0.0.0.0/8"),
    ("http://2130706433/", "loopback"),          # 127.0.0.1 as one decimal number
    ("http://0x7f000001/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://user:pw@example.com/", "credentials"),
    ("http:///nohost", "host"),
    ("http://exa mple.com/", "whitespace"),
    ("", "empty"),
    ("https://example.com/" + "a" * 2100, "longer"),
])
def test_refused_urls(url: str, why: str) -> None:
    reason = check_url(url)
    assert reason is not None and why in reason, reason


@pytest.mark.parametrize("url", ["https://hooks.example.com/in", "http://example.com:8080/x?y=1",
                                 "https://93.184.216.34/hook", "https://[2606:4700::1]/hook",
                                 "https://例え.jp/hook"])
def test_urls_that_pass_before_dns(url: str) -> None:
    assert check_url(url) is None


def test_allow_listed_literal_passes() -> None:
    assert check_url("http://127.0.0.1:9/hook", LOOPBACK_ONLY) is None
    assert "loopback" in check_url("http://127.0.0.2:9/hook", LOOPBACK_ONLY)


# ---- the client, against receivers on 127.0.0.1 --------------------------------------------------

class FakeResolver(AbstractResolver):
    """DNS as the test says: ``answers`` maps a name to the addresses it resolves to, one list
    per successive lookup (the last one repeats). Nothing is ever asked of a real DNS server."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):
        self.lookups.append(host)
        rounds = self.answers.get(host)
        if not rounds:
            raise OSError(f"no such name: {host}")
        addresses = rounds[min(len(self.lookups) - 1, len(rounds) - 1)]
        return [{"hostname": host, "host": a, "port": port,
                 "family": socket.AF_INET6 if ":" in a else socket.AF_INET, "proto": 0,
                 "flags": socket.AI_NUMERICHOST} for a in addresses]

    async def close(self) -> None:
        return None


class Receiver:
    """An aiohttp server on 127.0.0.1 (ephemeral port) that records what it gets."""

    def __init__(self, handler) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self._handler = handler
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _record(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs, dict(request.headers), await request.read()))
        return await self._handler(request)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._record)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()  # type: ignore[union-attr]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


async def _ok(_: web.Request) -> web.Response:
    return web.Response(status=204)


def egress(resolver: AbstractResolver | None = None, allow: str = "", **kw) -> Egress:
    return Egress(allow_networks=parse_allow_networks(allow), resolver=resolver or FakeResolver({}),
                  connect_timeout_s=2, total_timeout_s=5, **kw)


async def test_allow_listed_receiver_gets_the_post() -> None:
    async with Receiver(_ok) as receiver:
        client = egress(allow="127.0.0.1/32")
        try:
            answer = await client.post(receiver.url, b'{"a":1}', {"Content-Type": "application/json",
                                                                  "webhook-id": "msg_1", "Host": "evil"})
        finally:
            await client.close()
    assert answer.status == 204 and answer.ok and answer.body_prefix == b""
    method, path, headers, body = receiver.requests[0]
    assert (method, path, body) == ("POST", "/hook", b'{"a":1}')
    assert headers["webhook-id"] == "msg_1"
    assert headers["Host"] == f"127.0.0.1:{receiver.port}"  # the caller cannot override Host


@pytest.mark.parametrize("url", ["http://127.0.0.2:{port}/hook", "http://localhost:{port}/hook",
                                 "http://[::1]:{port}/hook", "http://[::ffff:127.0.0.1]:{port}/hook",
                                 "ftp://127.0.0.1:{port}/hook", "file:///etc/passwd",
                                 "http://2130706433:{port}/hook", "http://127.1:{port}/hook"])
async def test_refused_targets_get_nothing(url: str) -> None:
    """Allow 127.0.0.1 only: other loopback forms and schemes are refused before any packet."""
    async with Receiver(_ok) as receiver:
        client = egress(allow="127.0.0.1/32")
        try:
            with pytest.raises(EgressRefused):
                await client.post(url.format(port=receiver.port), b"{}")
        finally:
            await client.close()
    assert receiver.requests == []


async def test_loopback_is_refused_without_allow_list() -> None:
    async with Receiver(_ok) as receiver:
        client = egress()
        try:
            with pytest.raises(EgressRefused, match="loopback"):
                await client.post(receiver.url, b"{}")
        finally:
            await client.close()
    assert receiver.requests == []


async def test_a_name_that_resolves_to_loopback_is_refused() -> None:
    resolver = FakeResolver({"evil.example": [["127.0.0.1"]]})
    async with Receiver(_ok) as receiver:
        client = egress(resolver)
        try:
            assert client.check_url(f"http://evil.example:{receiver.port}/hook") is None  # passes at save time
            with pytest.raises(EgressRefused, match=r"evil.example resolves to 127.0.0.1: loopback"):
                await client.post(f"http://evil.example:{receiver.port}/hook", b"{}")
        finally:
            await client.close()
    assert resolver.lookups == ["evil.example"]
    assert receiver.requests == []


async def test_a_name_with_any_refused_answer_is_refused() -> None:
    resolver = FakeResolver({"mixed.example": [["127.0.0.1", "10.0.0.7"]]})
    async with Receiver(_ok) as receiver:
        client = egress(resolver, allow="127.0.0.1/32")
        try:
            with pytest.raises(EgressRefused, match="10.0.0.7: private"):
                await client.post(f"http://mixed.example:{receiver.port}/hook", b"{}")
        finally:
            await client.close()
    assert receiver.requests == []


@pytest.mark.parametrize("answer", ["::1", "::ffff:127.0.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0"])
async def test_names_resolving_to_internal_addresses_are_refused(answer: str) -> None:
    client = egress(FakeResolver({"internal.example": [[answer]]}))
    try:
        with pytest.raises(EgressRefused, match="internal.example resolves to"):
            await client.post("http://internal.example:9/hook", b"{}")
    finally:
        await client.close()


async def test_the_checked_address_is_the_one_connected_to() -> None:
    """DNS rebinding: the first lookup answers an allowed address, any later one a refused
    address. The request reaches the receiver after exactly one lookup, with the name in Host."""
    resolver = FakeResolver({"rebind.example": [["127.0.0.1"], ["127.0.0.2"]]})
    async with Receiver(_ok) as receiver:
        client = egress(resolver, allow="127.0.0.1/32")
        try:
            answer = await client.post(f"http://rebind.example:{receiver.port}/hook", b"{}")
            assert answer.status == 204
            assert resolver.lookups == ["rebind.example"]
            # a new connection looks the name up again, and the new answer is checked again
            await client.close()
            with pytest.raises(EgressRefused, match="127.0.0.2: loopback"):
                await client.post(f"http://rebind.example:{receiver.port}/hook", b"{}")
        finally:
            await client.close()
    assert len(receiver.requests) == 1
    assert receiver.requests[0][2]["Host"] == f"rebind.example:{receiver.port}"


async def test_redirects_are_not_followed() -> None:
    async with Receiver(_ok) as target:
        async def redirect(request: web.Request) -> web.Response:
            return web.Response(status=int(request.query["status"]),
                                headers={"Location": f"http://127.0.0.1:{target.port}/internal"})

        async with Receiver(redirect) as receiver:
            client = egress(allow="127.0.0.1/32")
            try:
                for status in (301, 302, 307, 308):
                    answer = await client.post(f"{receiver.url}?status={status}", b"{}")
                    assert answer.status == status and answer.is_redirect and not answer.ok
                    assert answer.headers["Location"].endswith("/internal")
            finally:
                await client.close()
    assert len(receiver.requests) == 4
    assert target.requests == []


async def test_a_huge_answer_is_read_only_up_to_the_bound() -> None:
    sent = 0

    async def flood(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        chunk = b"x" * 65_536
        try:
            for _ in range(1_600):  # up to 100 MiB, far more than anyone should read
                await response.write(chunk)
                sent += len(chunk)
        except (ConnectionResetError, ConnectionError, RuntimeError):
            pass
        return response

    async with Receiver(flood) as receiver:
        client = egress(allow="127.0.0.1/32", max_response_bytes=4096)
        try:
            answer = await asyncio.wait_for(client.post(receiver.url, b"{}"), 10)
        finally:
            await client.close()
    assert answer.status == 200
    assert answer.body_prefix == b"x" * 4096
    assert answer.truncated
    assert sent < 100 * 1_048_576


async def test_a_short_answer_is_read_whole() -> None:
    async def small(_: web.Request) -> web.Response:
        return web.Response(status=500, body=b"oops")

    async with Receiver(small) as receiver:
        client = egress(allow="127.0.0.1/32")
        try:
            answer = await client.post(receiver.url, b"{}")
        finally:
            await client.close()
    assert (answer.status, answer.body_prefix, answer.truncated, answer.ok) == (500, b"oops", False, False)


async def test_a_slow_receiver_times_out() -> None:
    release = asyncio.Event()

    async def slow(_: web.Request) -> web.Response:
        await asyncio.wait_for(release.wait(), 5)
        return web.Response(status=200)

    async with Receiver(slow) as receiver:
        client = Egress(allow_networks=LOOPBACK_ONLY, resolver=FakeResolver({}), connect_timeout_s=0.5,
                        total_timeout_s=0.5)
        try:
            with pytest.raises(EgressError, match="timed out"):
                await client.post(receiver.url, b"{}")
        finally:
            release.set()
            await client.close()


async def test_a_closed_port_is_a_network_error() -> None:
    with socket.socket() as s:  # a port that was free a moment ago, on loopback
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = egress(allow="127.0.0.1/32")
    try:
        with pytest.raises(EgressError, match="could not connect"):
            await client.post(f"http://127.0.0.1:{port}/hook", b"{}")
    finally:
        await client.close()


async def test_an_unknown_name_is_a_network_error() -> None:
    client = egress(FakeResolver({}))
    try:
        with pytest.raises(EgressError):
            await client.post("http://nowhere.example/hook", b"{}")
    finally:
        await client.close()


def test_ipv6_literal_host_is_checked_without_brackets() -> None:
    assert ipaddress.ip_address("::1")  # sanity
    assert "loopback" in check_url("http://[0:0:0:0:0:0:0:1]:80/")


# ---- names asked of the operator's DNS servers (NOTIFY_EGRESS_NAMESERVERS) --------------------------

def _local_dns_module():
    """local_dns.py, loaded by path (the tests directory is not a package)."""
    name = "notify_svc_test_local_dns"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("local_dns.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def local_dns():
    with _local_dns_module().LocalDNS() as server:
        yield server


@pytest.mark.parametrize(("text", "servers"), [
    ("", ()), (None, ()), (" , ", ()),
    ("10.0.0.53", (("10.0.0.53", 53),)),
    ("127.0.0.1:5353", (("127.0.0.1", 5353),)),
    ("fd00::53", (("fd00::53", 53),)),
    ("[fd00::53]", (("fd00::53", 53),)),
    ("[::1]:5353", (("::1", 5353),)),
    (" 10.0.0.53 ; 127.0.0.1:5353 ,", (("10.0.0.53", 53), ("127.0.0.1", 5353))),
])
def test_parse_nameservers(text: str | None, servers: tuple) -> None:
    assert parse_nameservers(text) == servers


@pytest.mark.parametrize("text", ["dns.example", "dns.example:53", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
                                  "127.0.0.1:５３", "127.0.0.1:53:53", "[::1]:", "[::1", "[::1]53", "10.0.0.0/8",
                                  "10.0.0.53,nope"])
def test_parse_nameservers_refuses_typos(text: str) -> None:
    with pytest.raises(ValueError):
        parse_nameservers(text)


def test_nameservers_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from notify_svc.config import Settings

    assert Settings().egress_nameservers == ""
    monkeypatch.setenv("NOTIFY_EGRESS_NAMESERVERS", "127.0.0.1:5353, [::1]:53")
    assert parse_nameservers(Settings().egress_nameservers) == (("127.0.0.1", 5353), ("::1", 53))
    monkeypatch.setenv("NOTIFY_EGRESS_NAMESERVERS", "dns.internal")
    with pytest.raises(ValueError, match="DNS server"):
        Settings()


def test_nameserver_resolver_needs_a_server() -> None:
    with pytest.raises(ValueError):
        NameserverResolver(())


async def test_from_settings_resolves_through_the_named_servers(local_dns, monkeypatch: pytest.MonkeyPatch) -> None:
    """The setting end to end inside the process: a name only the test's DNS server knows
    reaches the allow-listed receiver it resolves to, after one question to that server."""
    from notify_svc.config import Settings

    local_dns.set("hooks.example.test", ["127.0.0.1"])
    monkeypatch.setenv("NOTIFY_EGRESS_NAMESERVERS", local_dns.nameserver)
    monkeypatch.setenv("NOTIFY_WEBHOOK_ALLOW_NETWORKS", "127.0.0.1/32")
    async with Receiver(_ok) as receiver:
        client = Egress.from_settings(Settings())
        try:
            answer = await client.post(f"http://hooks.example.test:{receiver.port}/hook", b"{}")
        finally:
            await client.close()
    assert answer.status == 204
    assert receiver.requests[0][2]["Host"] == f"hooks.example.test:{receiver.port}"
    assert {name for name, _ in local_dns.queries} == {"hooks.example.test"}


@pytest.mark.parametrize(("records", "refused"), [
    (["127.0.0.1"], "evil.example.test resolves to 127.0.0.1: loopback address"),
    (["::1"], "evil.example.test resolves to ::1: loopback address"),
    (["169.254.169.254"], "evil.example.test resolves to 169.254.169.254: link-local address (incl. cloud metadata)"),
    (["10.1.2.3"], "evil.example.test resolves to 10.1.2.3: private address (RFC 1918)"),
])
async def test_answers_of_the_named_servers_are_checked(local_dns, records: list[str], refused: str) -> None:
    """What the operator's DNS server answers is checked like the system resolver's: a name
    resolving to a refused address is refused, and the listener there gets nothing."""
    local_dns.set("evil.example.test", records)
    async with Receiver(_ok) as receiver:
        client = Egress(allow_networks=(), nameservers=parse_nameservers(local_dns.nameserver),
                        connect_timeout_s=2, total_timeout_s=5)
        try:
            assert client.check_url(f"http://evil.example.test:{receiver.port}/hook") is None  # passes at save time
            with pytest.raises(EgressRefused) as refusal:
                await client.post(f"http://evil.example.test:{receiver.port}/hook", b"{}")
        finally:
            await client.close()
    assert refusal.value.reason == refused
    assert receiver.requests == []
    assert local_dns.queries and {name for name, _ in local_dns.queries} == {"evil.example.test"}


async def test_one_refused_answer_refuses_the_name(local_dns) -> None:
    """An allowed A record does not carry a refused AAAA record through."""
    local_dns.set("mixed.example.test", ["127.0.0.1", "::1"])
    async with Receiver(_ok) as receiver:
        client = Egress(allow_networks=LOOPBACK_ONLY, nameservers=parse_nameservers(local_dns.nameserver),
                        connect_timeout_s=2, total_timeout_s=5)
        try:
            with pytest.raises(EgressRefused, match=r"resolves to ::1: loopback"):
                await client.post(f"http://mixed.example.test:{receiver.port}/hook", b"{}")
        finally:
            await client.close()
    assert receiver.requests == []
    assert {kind for _, kind in local_dns.queries} == {"A", "AAAA"}


async def test_a_name_the_named_servers_do_not_know_is_a_network_error(local_dns) -> None:
    client = Egress(nameservers=parse_nameservers(local_dns.nameserver), connect_timeout_s=2, total_timeout_s=5)
    try:
        with pytest.raises(EgressError, match="nowhere.example.test: no such name"):
            await client.post("http://nowhere.example.test/hook", b"{}")
    finally:
        await client.close()
    assert {name for name, _ in local_dns.queries} == {"nowhere.example.test"}


async def test_a_silent_dns_server_is_a_network_error() -> None:
    """A DNS server that never answers: an error within the connect timeout, not a hang."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never read
        silent.bind(("127.0.0.1", 0))
        client = Egress(nameservers=(("127.0.0.1", silent.getsockname()[1]),), connect_timeout_s=0.5,
                        total_timeout_s=1)
        try:
            with pytest.raises(EgressError):
                await asyncio.wait_for(client.post("http://quiet.example.test/hook", b"{}"), 5)
        finally:
            await client.close()
