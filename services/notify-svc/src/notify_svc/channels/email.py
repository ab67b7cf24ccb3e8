"""E-mail replies and notifications over SMTP (aiosmtplib), behind ``base.Adapter``.

Building the message is a pure function (``compose``: the envelope and the MIME message) so
that headers, encodings and threading are tested without a server; ``EmailAdapter.send`` makes one SMTP transaction, on a
connection kept open between messages (``SmtpPool``), and classifies its result
(docs/channels/outbound.md "E-mail"):

- accepted by the server (even if some of several recipients were refused): ``sent``;
- no recipient address at all: ``undeliverable``;
- connection errors, timeouts, disconnects, any 4xx: ``transient`` (the server or the mailbox
  may come back; greylisting answers 450/451);
- any 5xx: ``permanent``, with the server's text when it refused the recipient (550/551/553),
  so the agent reads why;
- a malformed address or a message that cannot be encoded: ``permanent``.

The SMTP URL carries credentials: it is a ``SecretStr`` in the settings, and neither the URL nor
the password appears in a reason, a log line or a ``repr``.
"""

from __future__ import annotations

import contextlib
import html
import re
import secrets
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from email import encoders
from email.errors import MessageError
from email.header import Header
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP, Compat32
from email.utils import format_datetime, formataddr, getaddresses, parseaddr
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import aiosmtplib
import idna

from .base import Attachment, OutboundMessage, SendResult


class _CachedHeaderRegistry(HeaderRegistry):
    """The standard library's header registry, with each header's class made once.

    ``HeaderRegistry.__getitem__`` builds a new class (``type(...)``) for every header set on
    or written from a message, about a tenth of an e-mail's build time; the classes are
    stateless, so one per header name gives the same bytes. Measured: an acknowledgement's
    build and serialisation went from 3.25 to 2.34 ms of CPU."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


#: RFC 5322 with CRLF line ends (the ``SMTP`` policy), header classes cached: only for the rare
#: message to a non-ASCII local part (``compose``)
SMTP_POLICY = SMTP.clone(header_factory=_CachedHeaderRegistry())


class _WirePolicy(Compat32):
    """``compat32`` writing a header that already fits on one line as it is.

    ``Compat32`` wraps every string header in an ``email.header.Header`` to fold it, which was
    two thirds of a message's serialisation; for printable ASCII that fits, the result is the
    value itself (a property test in tests/test_email.py compares the two)."""

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        if (type(value) is str and value.isascii() and value.isprintable()
                and len(name) + 2 + len(value) <= (self.max_line_length or 78)):
            return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)


#: what ``compose`` writes: CRLF line ends, headers folded at 76 characters, so that an encoded
#: word on a continuation line is at most the 75 characters RFC 2047 allows
WIRE_POLICY = _WirePolicy(linesep="\r\n", max_line_length=76)
_UTF8 = "utf-8"
#: an ASCII word longer than this is written as encoded words, which fold anywhere
_MAX_PLAIN_WORD = 70
#: RFC 2231 continuation length of an attachment's file name
_RFC2231_CHUNK = 50
_MAX_MSG_ID = 250
#: RFC 2045 token (a content type's type and subtype)
_MIME_TOKEN = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,64}")
#: RFC 5321's limit on a line, without its CRLF
_MAX_7BIT_LINE = 998

#: subject prefixes of answers (English, German, French, Chinese), stripped before ours is added
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|aw|sv|antw|réf|回复|答复)\s*(?:\[\d+\])?\s*[:：]\s*)+", re.IGNORECASE)
_TICKET_TAG = re.compile(r"\s*\[#\d+\]\s*$")
_LINE_BREAKS = re.compile(r"[\r\n\t\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x85\u2028\u2029]+")
_MAX_REASON = 300
#: the name we give in EHLO: this host's FQDN, as aiosmtplib would send, but looked up once per
#: process in a thread (aiosmtplib asks ``socket.getfqdn()`` on every connection, inside the
#: event loop: a DNS lookup that can stall everything for seconds where DNS is slow)
_local_hostname: str | None = None


async def local_hostname() -> str:
    global _local_hostname
    if _local_hostname is None:
        import asyncio
        import socket

        _local_hostname = await asyncio.to_thread(socket.getfqdn)
    return _local_hostname


class SmtpConfigError(ValueError):
    """The SMTP URL cannot be used; the message never includes the URL (it holds a password)."""


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    #: implicit TLS (``smtps://``)
    use_tls: bool = False
    #: True: STARTTLS required; False: never; None: when the server offers it
    start_tls: bool | None = None
    validate_certs: bool = True

    def __repr__(self) -> str:  # never the password
        return f"SmtpServer(host={self.host!r}, port={self.port}, tls={self.use_tls}, starttls={self.start_tls})"

    @property
    def key(self) -> str:
        """The destination key of per-destination limits: one SMTP server."""
        return f"smtp:{self.host}:{self.port}"


def _flag(values: dict[str, list[str]], name: str) -> bool | None:
    if name not in values:
        return None
    value = values[name][-1].strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SmtpConfigError(f"the SMTP URL's {name} must be true or false")


def parse_smtp_url(url: str) -> SmtpServer:
    """``smtp://[user[:pass]@]host[:port][?starttls=true|false&verify=false]`` or ``smtps://``.

    Defaults: port 25 for ``smtp``, 465 for ``smtps``; STARTTLS when offered unless ``starttls``
    says otherwise (``true`` makes it required). User and password are percent-decoded."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise SmtpConfigError("the SMTP URL is malformed") from exc
    if parts.scheme not in ("smtp", "smtps"):
        raise SmtpConfigError("the SMTP URL's scheme must be smtp or smtps")
    if not parts.hostname:
        raise SmtpConfigError("the SMTP URL has no host")
    query = parse_qs(parts.query)
    use_tls = parts.scheme == "smtps"
    start_tls = _flag(query, "starttls")
    if use_tls and start_tls:
        raise SmtpConfigError("smtps:// is implicit TLS: starttls=true does not apply")
    verify = _flag(query, "verify")
    return SmtpServer(
        host=parts.hostname,
        port=port or (465 if use_tls else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        use_tls=use_tls,
        start_tls=False if use_tls else start_tls,
        validate_certs=verify is not False,
    )


# ---- building the message (pure) -----------------------------------------------------------------


def _one_line(value: str) -> str:
    """Header text on one line: a CR/LF in a subject or name would be refused by the policy (and
    is how header injection works)."""
    return _LINE_BREAKS.sub(" ", value).strip()


def reply_subject(subject: str | None, number: int | None, *, automatic: bool = False) -> str:
    """``Re: <subject> [#<number>]``: one ``Re:`` whatever the customer's client added (``Re: Re:``,
    ``AW:``, ``回复：``), one ticket tag. Notifications are not answers: no ``Re:``."""
    text = _one_line(subject or "")
    if automatic:  # a template's subject: kept as written, the tag added unless it has one
        text = text or "Your request"
        return text if number is None or f"[#{number}]" in text else f"{text} [#{number}]"
    text = _REPLY_PREFIX.sub("", text)
    text = _TICKET_TAG.sub("", text).strip()
    if not text:
        text = "Your request"
    text = f"Re: {text}"
    if number is not None:
        text = f"{text} [#{number}]"
    return text


def _msg_id(value: str | None) -> str | None:
    """``<id>``, or None for what cannot be a message id on the wire (RFC 5322 allows neither
    encoded words nor spaces in one; a customer's malformed id is left out of the threading)."""
    if not value:
        return None
    value = _one_line(value)
    if not value or not value.isascii() or not value.isprintable() or " " in value or len(value) > _MAX_MSG_ID:
        return None
    return value if value.startswith("<") else f"<{value.strip('<>')}>"


def _addresses(value: Any) -> list[tuple[str, str]]:
    """(name, addr) pairs from a route field: a string (``"A <a@x>, b@y"``) or a list of them."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)] \
        if isinstance(value, (list, tuple)) else []
    pairs = getaddresses([_one_line(v) for v in items])
    return [(name, addr) for name, addr in pairs if addr and "@" in addr]


def _address(name: str, addr: str) -> Address:
    local, _, domain = addr.rpartition("@")
    return Address(display_name=_one_line(name or ""), username=local, domain=domain)


def recipients_of(message: OutboundMessage, *, fallback: str | None = None) -> list[tuple[str, str]]:
    """To: the route's ``to`` (what ticket-svc recorded), else the requester's address."""
    to = _addresses(message.route.get("to"))
    if not to and fallback:
        to = _addresses(fallback)
    return to


def choose_from(route_from: Any, *, support_address: str, support_addresses: Iterable[str]) -> str:
    """The address the customer wrote to when it is one of ours (so a customer of sales@ hears
    from sales@), else the configured support address: never an address the event merely
    names, or a forged ``from`` would make us send as anyone."""
    allowed = {a.strip().lower() for a in support_addresses if a.strip()}
    allowed.add(support_address.strip().lower())
    for _, addr in _addresses(route_from):
        if addr.lower() in allowed:
            return addr
    return support_address


def text_to_html(text: str) -> str:
    """A minimal HTML part from the text: escaped, paragraphs and line breaks kept."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]
    body = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    return f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>{body}</body></html>'


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One e-mail ready for SMTP: the envelope (``MAIL FROM`` and ``RCPT TO``, taken from what we
    built, never from the headers again) and the MIME message."""

    sender: str
    recipients: tuple[str, ...]
    mime: Message
    #: addresses left out because no server could route them (a domain without an ASCII form)
    dropped: tuple[str, ...] = ()

    @property
    def international(self) -> bool:
        """An address whose local part is not ASCII (RFC 6531): only a server with SMTPUTF8 can
        carry it, and the message is built by the standard library's modern policy."""
        return isinstance(self.mime, EmailMessage)


def _wire_domain(addr: str) -> tuple[str, str]:
    """(local part, domain) with an internationalised domain in its ASCII form, which every server
    routes: IDNA 2008 with UTS 46 mapping (``idna``), not Python's IDNA 2003 codec, which maps
    ``straße.de`` to a different domain, ``strasse.de``. ValueError for a domain without one."""
    local, _, domain = addr.rpartition("@")
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise ValueError(f"the address domain {domain!r} cannot be encoded") from exc
    return local, domain


def _routable(pairs: list[tuple[str, str]]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(name, local part, ASCII domain) of each address a server can route, and the others."""
    routable: list[tuple[str, str, str]] = []
    dropped: list[str] = []
    for name, addr in pairs:
        try:
            routable.append((name, *_wire_domain(addr)))
        except ValueError:
            dropped.append(addr)
    return routable, dropped


def _plain_ascii(value: str) -> bool:
    """Header text that can be written as it is: ASCII that a reader would not take for an
    encoded word (``=?``), without a word too long to fold onto a line of its own (encoded
    words are cut anywhere)."""
    return value.isascii() and "=?" not in value and all(len(word) <= _MAX_PLAIN_WORD for word in value.split())


def _header_text(value: str, name: str) -> str | Header:
    """ASCII stays as written (the generator folds it at spaces); anything else becomes RFC 2047
    encoded words of at most 75 characters, each holding whole UTF-8 characters."""
    return value if _plain_ascii(value) else Header(value, _UTF8, header_name=name)


def _mailbox(name: str, local: str, domain: str) -> str:
    """``Name <local@domain>``: an ASCII name quoted where it must be, any other name as encoded
    words separated by spaces (so a long one can be folded between them)."""
    addr = f"{local}@{domain}"
    name = _one_line(name or "")
    if not name:
        return addr
    if _plain_ascii(name):
        return formataddr((name, addr))
    words = Header(name, _UTF8).encode(linesep="\n", maxlinelen=75).replace("\n ", " ")
    return f"{words} <{addr}>"


def _boundary() -> str:
    """A multipart boundary of 128 random bits: it cannot occur in a base64 part (``_`` is not in
    its alphabet) and nobody can guess it into a text part, so the generator need not search the
    parts for it (as it does, with a regular expression compiled per message, for its own)."""
    return f"=_{secrets.token_hex(16)}"


def _text_part(text: str, subtype: str) -> MIMEText:
    """ASCII with lines SMTP can carry as they are: 7bit, readable in the raw message; anything
    else base64 (7-bit on the wire, so no server needs 8BITMIME). A lone CR is a line break, as
    SMTP allows no bare CR."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii() and all(len(line) <= _MAX_7BIT_LINE for line in text.split("\n")):
        return MIMEText(text, subtype, "us-ascii")
    return MIMEText(text, subtype, _UTF8)


def _disposition(filename: str) -> str:
    """``Content-Disposition`` of an attachment: a short plain ASCII name quoted, any other as
    RFC 2231 percent-encoded UTF-8 in continuations of at most 50 characters, so that no line
    of a long name exceeds what SMTP carries (``email.utils.encode_rfc2231`` does not split)."""
    if filename.isascii() and filename.isprintable() and len(filename) <= _RFC2231_CHUNK \
            and '"' not in filename and "\\" not in filename:
        return f'attachment; filename="{filename}"'
    encoded = quote(filename, safe="", errors="strict")
    chunks: list[str] = []
    while encoded:
        cut = min(len(encoded), _RFC2231_CHUNK)
        if "%" in encoded[max(0, cut - 2):cut]:  # never split a %XX escape
            cut = encoded.rindex("%", 0, cut)
        chunks.append(encoded[:cut])
        encoded = encoded[cut:]
    if len(chunks) == 1:
        return f"attachment; filename*=utf-8''{chunks[0]}"
    return "attachment; " + "; ".join(
        f"filename*{i}*={'utf-8' + chr(39) * 2 if i == 0 else ''}{chunk}" for i, chunk in enumerate(chunks))


def _attachment_part(attachment: Attachment) -> MIMEBase:
    maintype, _, subtype = (attachment.content_type or "").partition("/")
    if not _MIME_TOKEN.fullmatch(maintype) or not _MIME_TOKEN.fullmatch(subtype) or maintype.lower() == "multipart":
        maintype, subtype = "application", "octet-stream"  # never a header line the sender wrote
    part = MIMEBase(maintype, subtype)
    part.set_payload(attachment.content)
    encoders.encode_base64(part)
    part["Content-Disposition"] = _disposition(_one_line(attachment.filename) or "attachment")
    return part


def compose(message: OutboundMessage, *, from_address: str, from_name: str = "",
            fallback_to: str | None = None, now: datetime | None = None) -> Outgoing:
    """The envelope and MIME message for ``message``: text and HTML alternatives, attachments,
    our ``Message-ID`` and the threading headers, all 7-bit: non-ASCII subjects and display
    names as RFC 2047 encoded words, bodies base64, file names RFC 2231, domains IDNA. Raises
    ValueError when there is no recipient (the caller answers ``undeliverable``).

    Built with the standard library's ``compat32`` classes (``email.mime``, ``email.header``):
    the modern policy's header registry re-parses and re-folds every header it is given, which
    made an acknowledgement cost 2.4-2.5 ms of CPU to build and serialise against 0.3-0.4 here
    (docs/performance.md, round 8), the largest part of notify-svc's work per ticket. Only a local part that is not ASCII (RFC 6531,
    which needs the server's SMTPUTF8 and UTF-8 headers) is built by the modern policy."""
    to = recipients_of(message, fallback=fallback_to)
    if not to:
        raise ValueError("no e-mail address to send to")
    cc = _addresses(message.route.get("cc"))
    everyone = [*to, *cc]
    if not from_address.rpartition("@")[0].isascii() or any(not a.rpartition("@")[0].isascii() for _, a in everyone):
        mime = _build_international(message, to, cc, from_address=from_address, from_name=from_name, now=now)
        return Outgoing(sender=from_address, recipients=tuple(a for _, a in everyone), mime=mime)
    sender_local, sender_domain = _wire_domain(from_address)
    wire_to, dropped_to = _routable(to)
    wire_cc, dropped_cc = _routable(cc)
    if not wire_to:
        raise ValueError(f"no recipient address has a domain that can be encoded: {', '.join(dropped_to)}")

    body = MIMEMultipart("alternative", _subparts=(
        _text_part(message.body_text, "plain"),
        _text_part(message.body_html or text_to_html(message.body_text), "html")),
        boundary=_boundary(), policy=WIRE_POLICY)
    if message.attachments:
        msg = MIMEMultipart("mixed", _subparts=(body, *(_attachment_part(a) for a in message.attachments)),
                            boundary=_boundary(), policy=WIRE_POLICY)
    else:
        msg = body
    msg["From"] = _mailbox(from_name, sender_local, sender_domain)
    msg["To"] = ", ".join(_mailbox(n, local, domain) for n, local, domain in wire_to)
    if wire_cc:
        msg["Cc"] = ", ".join(_mailbox(n, local, domain) for n, local, domain in wire_cc)
    number = message.extra.get("number") if isinstance(message.extra.get("number"), int) else None
    msg["Subject"] = _header_text(reply_subject(message.subject, number, automatic=message.automatic), "Subject")
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = _message_id(message, sender_domain)
    for name, value in _threading(message):
        msg[name] = value
    if message.automatic:
        msg["Auto-Submitted"] = "auto-generated"
    msg["X-Helpdesk-Delivery-Id"] = str(message.delivery_id)
    if message.language:
        msg["Content-Language"] = _header_text(_one_line(message.language), "Content-Language")
    recipients = tuple(f"{local}@{domain}" for _, local, domain in (*wire_to, *wire_cc))
    return Outgoing(sender=f"{sender_local}@{sender_domain}", recipients=recipients, mime=msg,
                    dropped=(*dropped_to, *dropped_cc))


def build_message(message: OutboundMessage, *, from_address: str, from_name: str = "",
                  fallback_to: str | None = None, now: datetime | None = None) -> Message:
    """The MIME message ``compose`` builds (``as_bytes()`` is what the server receives)."""
    return compose(message, from_address=from_address, from_name=from_name, fallback_to=fallback_to, now=now).mime


def _message_id(message: OutboundMessage, domain: str) -> str:
    return _msg_id(message.email_message_id) or f"<{message.delivery_id}@{domain}>"


def _threading(message: OutboundMessage) -> list[tuple[str, str]]:
    """``In-Reply-To`` and ``References`` (which ends with what we answer)."""
    headers: list[tuple[str, str]] = []
    in_reply_to = _msg_id(message.in_reply_to)
    references = [r for r in (_msg_id(x) for x in message.references) if r]
    if in_reply_to:
        headers.append(("In-Reply-To", in_reply_to))
        if in_reply_to not in references:
            references.append(in_reply_to)
    if references:
        headers.append(("References", " ".join(references)))
    return headers


def _build_international(message: OutboundMessage, to: list[tuple[str, str]], cc: list[tuple[str, str]], *,
                         from_address: str, from_name: str, now: datetime | None) -> EmailMessage:
    """An e-mail to or from a non-ASCII local part (RFC 6531), by the modern policy, which writes
    UTF-8 headers when aiosmtplib negotiates SMTPUTF8 (``send_message``)."""
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = _address(from_name, from_address)
    msg["To"] = [_address(n, a) for n, a in to]
    if cc:
        msg["Cc"] = [_address(n, a) for n, a in cc]
    number = message.extra.get("number") if isinstance(message.extra.get("number"), int) else None
    msg["Subject"] = reply_subject(message.subject, number, automatic=message.automatic)
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = _message_id(message, from_address.rpartition("@")[2])
    for name, value in _threading(message):
        msg[name] = value
    if message.automatic:
        msg["Auto-Submitted"] = "auto-generated"
    msg["X-Helpdesk-Delivery-Id"] = str(message.delivery_id)
    msg.set_content(message.body_text, subtype="plain", charset="utf-8")
    msg.add_alternative(message.body_html or text_to_html(message.body_text), subtype="html", charset="utf-8")
    for attachment in message.attachments:
        maintype, _, subtype = (attachment.content_type or "").partition("/")
        if not maintype or not subtype or maintype == "multipart":
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(attachment.content, maintype=maintype, subtype=subtype,
                           filename=_one_line(attachment.filename) or "attachment")
    if message.language:  # last: set_content and add_attachment move the Content-* headers
        msg["Content-Language"] = _one_line(message.language)
    return msg


# ---- sending --------------------------------------------------------------------------------


def _reason(text: Any) -> str:
    value = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return _one_line(value)[:_MAX_REASON]


def classify_code(code: int, text: str, *, what: str) -> SendResult:
    """An SMTP reply code: 4xx transient, 5xx permanent (with the server's words)."""
    detail = f"{what}: {code} {_reason(text)}".strip()
    if 400 <= code < 500:
        return SendResult("transient", reason=detail, code=str(code))
    if 500 <= code < 600:
        return SendResult("permanent", reason=detail, code=str(code))
    return SendResult("transient", reason=detail, code=str(code))


class _Connection:
    __slots__ = ("client", "messages", "idle_since")

    def __init__(self, client: aiosmtplib.SMTP, now: float) -> None:
        self.client = client
        self.messages = 0
        self.idle_since = now


class SmtpPool:
    """Connections to one SMTP server, kept open between messages.

    Opening a connection costs a TCP handshake, the greeting, EHLO, often STARTTLS and AUTH: many
    round trips and most of the CPU of sending a short notification, on both sides. Servers expect
    clients to reuse a session for several messages, within limits, so a connection is reused
    while it is younger than ``max_idle_s`` idle and has carried fewer than ``max_messages``
    (Postfix, Exchange and the big providers cap messages per session); at most ``max_idle``
    wait between messages (the dispatcher's per-destination concurrency bounds how many are in
    use at once). A connection idle for more than ``check_after_s`` is asked for a ``NOOP``
    before it carries a message, so one the server closed meanwhile is replaced instead of
    failing the delivery. A connection that saw any error is closed, never reused: its SMTP
    state is unknown."""

    def __init__(self, connect: Callable[[], Awaitable[aiosmtplib.SMTP]], *, max_idle: int = 4,
                 max_idle_s: float = 30.0, max_messages: int = 100, check_after_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._connect = connect
        self._idle: deque[_Connection] = deque()
        self.max_idle = max_idle
        self.max_idle_s = max_idle_s
        self.max_messages = max_messages
        self.check_after_s = check_after_s
        self._clock = clock
        #: connections opened so far (tests and metrics read it)
        self.opened = 0

    async def acquire(self) -> _Connection:
        """A usable connection: an idle one that is still fit, else a new one (connect errors
        propagate, classified by the caller)."""
        while self._idle:
            connection = self._idle.pop()  # the most recently used: the likeliest to be alive
            idle_for = self._clock() - connection.idle_since
            if idle_for > self.max_idle_s or not connection.client.is_connected:
                await self._quit(connection)
                continue
            if idle_for > self.check_after_s:
                try:
                    await connection.client.noop()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    await self._quit(connection)
                    continue
            return connection
        client = await self._connect()
        self.opened += 1
        return _Connection(client, self._clock())

    async def release(self, connection: _Connection) -> None:
        """Back to the idle set after a message the server accepted."""
        connection.messages += 1
        connection.idle_since = self._clock()
        if connection.messages >= self.max_messages or len(self._idle) >= self.max_idle:
            await self._quit(connection)
        else:
            self._idle.append(connection)

    async def discard(self, connection: _Connection) -> None:
        await self._quit(connection, polite=False)

    async def close(self) -> None:
        while self._idle:
            await self._quit(self._idle.pop())

    @staticmethod
    async def _quit(connection: _Connection, *, polite: bool = True) -> None:
        client = connection.client
        if polite and client.is_connected:
            with contextlib.suppress(Exception):
                await client.quit()
        if client.is_connected:
            client.close()


class EmailAdapter:
    """SMTP over a small pool of connections to the one configured server (``SmtpPool``); the
    dispatcher's per-destination limit bounds how many a server sees at once."""

    channel = "email"

    def __init__(self, *, smtp_url: str, support_address: str = "support@localhost",
                 support_addresses: Sequence[str] = (), support_name: str = "", timeout_s: float = 30.0,
                 tls_context: ssl.SSLContext | None = None, pool_size: int = 4) -> None:
        self._config_error: str | None = None
        self.server: SmtpServer | None = None
        if not smtp_url.strip():
            self._config_error = "e-mail is not configured (NOTIFY_SMTP_URL / SMTP_URL)"
        else:
            try:
                self.server = parse_smtp_url(smtp_url)
            except SmtpConfigError as exc:
                self._config_error = f"NOTIFY_SMTP_URL: {exc}"
        self._support_address = parseaddr(support_address)[1] or "support@localhost"
        self._support_addresses = tuple(support_addresses)
        self._support_name = support_name
        self._timeout_s = timeout_s
        self._tls_context = tls_context
        self.pool = SmtpPool(self._open, max_idle=pool_size)

    @classmethod
    def from_settings(cls, settings: Any) -> EmailAdapter:
        return cls(
            smtp_url=settings.smtp_url.get_secret_value(),
            support_address=settings.support_address,
            support_addresses=[a for a in settings.support_addresses.split(",") if a.strip()],
            support_name=settings.support_name,
            timeout_s=settings.smtp_timeout_s,
            pool_size=settings.destination_concurrency,
        )

    async def _open(self) -> aiosmtplib.SMTP:
        """A connected (and, with credentials, authenticated) session; connect errors propagate."""
        server = self.server
        assert server is not None
        client = aiosmtplib.SMTP(
            hostname=server.host, port=server.port, username=server.username, password=server.password,
            use_tls=server.use_tls, start_tls=server.start_tls, validate_certs=server.validate_certs,
            tls_context=self._tls_context, timeout=self._timeout_s, local_hostname=await local_hostname(),
        )
        try:
            await client.connect()
        except BaseException:
            if client.is_connected:
                client.close()
            raise
        return client

    async def _transmit(self, outgoing: Outgoing, data: bytes | None) -> dict[str, Any]:
        """One message on a pooled connection: the recipients the server refused while accepting
        the message (aiosmtplib's exceptions propagate; the connection is then dropped). The
        envelope is the one ``compose`` built; only an internationalised message goes through
        ``send_message``, which negotiates SMTPUTF8 and serialises with UTF-8 headers."""
        connection = await self.pool.acquire()
        try:
            if outgoing.international:
                errors, _response = await connection.client.send_message(
                    outgoing.mime, sender=outgoing.sender, recipients=list(outgoing.recipients))
            else:
                errors, _response = await connection.client.sendmail(
                    outgoing.sender, list(outgoing.recipients), data)
        except BaseException:
            await self.pool.discard(connection)
            raise
        await self.pool.release(connection)
        return errors

    @property
    def destination(self) -> str:
        return self.server.key if self.server else "smtp:unconfigured"

    def from_address(self, route: Mapping[str, Any]) -> str:
        return choose_from(route.get("from"), support_address=self._support_address,
                           support_addresses=self._support_addresses)

    async def send(self, message: OutboundMessage) -> SendResult:
        fallback = message.extra.get("recipient_email")
        try:
            outgoing = compose(message, from_address=self.from_address(message.route), from_name=self._support_name,
                               fallback_to=fallback if isinstance(fallback, str) else None)
            # serialised before a connection is taken: a message that cannot be written costs none
            data = None if outgoing.international else outgoing.mime.as_bytes()
        except (ValueError, UnicodeError, MessageError) as exc:
            if not recipients_of(message, fallback=fallback if isinstance(fallback, str) else None):
                return SendResult("undeliverable", reason="no e-mail address for the recipient")
            return SendResult("permanent", reason=f"the message cannot be built: {_reason(exc)}")
        if self.server is None:
            return SendResult("permanent", reason=self._config_error)
        server = self.server
        try:
            errors = await self._transmit(outgoing, data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients
            codes = [r.code for r in refused]
            first = refused[0] if refused else None
            text = "; ".join(f"{r.recipient}: {r.code} {_reason(r.message)}" for r in refused)[:_MAX_REASON]
            if any(400 <= c < 500 for c in codes):
                return SendResult("transient", reason=f"recipient refused for now: {text}",
                                  code=str(first.code) if first else None)
            return SendResult("permanent", reason=f"recipient refused: {text}", code=str(first.code) if first else None)
        except aiosmtplib.SMTPAuthenticationError as exc:
            return classify_code(exc.code, exc.message, what="authentication refused")
        except aiosmtplib.SMTPSenderRefused as exc:
            return classify_code(exc.code, exc.message, what="sender refused")
        except aiosmtplib.SMTPNotSupported as exc:
            return SendResult("permanent", reason=f"the server does not support what the message needs: {_reason(exc)}")
        except (aiosmtplib.SMTPTimeoutError, TimeoutError):
            return SendResult("transient", reason="the SMTP server timed out")
        except aiosmtplib.SMTPConnectError:
            return SendResult("transient", reason=f"cannot connect to the SMTP server {server.host}:{server.port}")
        except aiosmtplib.SMTPServerDisconnected:
            return SendResult("transient", reason="the SMTP server closed the connection")
        except aiosmtplib.SMTPResponseException as exc:
            return classify_code(exc.code, exc.message, what="the SMTP server answered")
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            return SendResult("transient", reason=f"SMTP error: {type(exc).__name__}")
        except (UnicodeError, ValueError) as exc:
            return SendResult("permanent", reason=f"the message cannot be sent: {_reason(exc)}")
        refused = "; ".join([*(f"{addr}: {r.code} {_reason(r.message)}" for addr, r in errors.items()),
                             *(f"{_reason(addr)}: the domain cannot be encoded" for addr in outgoing.dropped)])
        return SendResult("sent", provider_id=str(outgoing.mime["Message-ID"]),
                          reason=f"some recipients refused: {refused}"[:_MAX_REASON] if refused else None)

    async def close(self) -> None:
        await self.pool.close()
