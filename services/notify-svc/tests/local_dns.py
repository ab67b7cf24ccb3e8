"""A DNS server on 127.0.0.1 that answers what a test says (test_egress.py, tests/e2e/test_webhooks.py).

Self-contained (loaded by path, like fakes.py): the egress tests point ``NOTIFY_EGRESS_NAMESERVERS``
at it to prove that names are resolved by the servers an operator names and that every answer
is still checked, without any DNS question leaving the machine. It runs in its own thread so it
outlives a test's event loop (the end-to-end stack asks it from another process, on retries too).
"""

from __future__ import annotations

import ipaddress
import socketserver
import threading

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class LocalDNS:
    """UDP on 127.0.0.1, an ephemeral port. ``records`` maps a name to its addresses: IPv4 ones
    answer ``A`` questions, IPv6 ones ``AAAA``. Unknown names are NXDOMAIN; a known name without
    an address of the asked type answers no record (NODATA). ``queries`` logs every question as
    ``(name, type)``, so a test can show the lookup went here."""

    def __init__(self, records: dict[str, list[str]] | None = None) -> None:
        self.records: dict[str, list[str]] = {}
        for name, addresses in (records or {}).items():
            self.set(name, addresses)
        self.queries: list[tuple[str, str]] = []
        self._server: socketserver.UDPServer | None = None
        self._thread: threading.Thread | None = None

    def set(self, name: str, addresses: list[str]) -> None:
        self.records[name.lower().rstrip(".")] = list(addresses)

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    @property
    def nameserver(self) -> str:
        """The value for ``NOTIFY_EGRESS_NAMESERVERS``."""
        return f"127.0.0.1:{self.port}"

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text().lower().rstrip(".")
        kind = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, kind))
        addresses = self.records.get(name)
        if addresses is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()
        version = {"A": 4, "AAAA": 6}.get(kind)
        matching = [a for a in addresses if ipaddress.ip_address(a).version == version]
        if matching:
            response.answer.append(dns.rrset.from_text(question.name, 1, "IN", kind, *matching))
        return response.to_wire()

    def start(self) -> LocalDNS:
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                try:
                    reply = owner.answer(data)
                except Exception:  # a malformed question gets no answer, as from a real server
                    return
                sock.sendto(reply, self.client_address)

        self._server = socketserver.UDPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="local-dns", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalDNS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
