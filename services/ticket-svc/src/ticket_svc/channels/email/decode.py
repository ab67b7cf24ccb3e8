"""Bytes to text for e-mail: charsets, RFC 2047 encoded words, RFC 2231 parameters, addresses.

Real mail lies about its charset. Chinese clients label GBK text ``gb2312`` (GB2312 lacks
characters such as 镕 or 啰 that GBK and GB18030 have), Taiwanese and Hong Kong mail labelled
``big5`` uses HKSCS or Microsoft cp950 extensions, ``iso-8859-1`` is usually windows-1252 with
curly quotes, and some mail declares nothing at all while carrying raw 8-bit headers. The stdlib
decoders replace what they cannot decode, so we do the decoding ourselves: every label is
mapped to the superset codec, a failing strict decode falls back to UTF-8 (the most common
mislabel), and only as a last resort are undecodable bytes replaced. Nothing here raises on bad
input.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from email.utils import getaddresses, parseaddr
from urllib.parse import unquote_to_bytes

#: Labels whose text is better read with a superset codec.
_SUPERSETS: dict[str, tuple[str, ...]] = {
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "gb18030": ("gb18030",),
    "big5": ("big5hkscs", "cp950"),
    "big5hkscs": ("big5hkscs", "cp950"),
    "cp950": ("cp950", "big5hkscs"),
    "iso8859_1": ("cp1252", "latin-1"),
    "cp1252": ("cp1252", "latin-1"),
    "ascii": (),  # declared ASCII with 8-bit bytes says nothing useful: guess
    "euc_kr": ("cp949",),
    "shift_jis": ("cp932",),
    "iso2022_jp": ("iso2022_jp_ext", "iso2022_jp_2"),
}

_LABEL_FIXES = {
    # labels seen in the wild that Python does not know or knows by another name
    "x-gbk": "gbk", "csgb2312": "gb2312", "gb_2312-80": "gb2312", "x-euc-cn": "gb2312", "euc-cn": "gb2312",
    "chinese": "gb2312", "x-big5": "big5", "cn-big5": "big5", "big5-hkscs": "big5hkscs",
    "ks_c_5601-1987": "euc_kr", "unicode-1-1-utf-8": "utf-8", "utf8": "utf-8", "x-unknown": "",
    "unknown-8bit": "", "unknown": "", "default": "", "us-ascii": "ascii", "ansi_x3.4-1968": "ascii",
}


def codec_name(label: str | None) -> str | None:
    """Python's canonical codec name for a charset label, or None when unknown or absent."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _LABEL_FIXES.get(label, label)
    if not label:
        return None
    try:
        return codecs.lookup(label).name.replace("-", "_")
    except (LookupError, ValueError):
        return None


def _is_plausible_chinese(text: str) -> bool:
    """Whether a GB18030 guess produced ordinary Chinese rather than mojibake.

    GB18030 decodes most byte soups without error (windows-1252 ``It\x92s`` reads as a CJK
    character), so a guess is kept only when nearly all of its non-ASCII characters lie in
    GB2312, the few thousand characters and punctuation that everyday Chinese text uses.
    """
    non_ascii = [ch for ch in text if ord(ch) > 0x7F]
    if not non_ascii:
        return True
    common = 0
    for ch in non_ascii:
        try:
            ch.encode("gb2312")
            common += 1
        except UnicodeEncodeError:
            pass
    return common >= 0.8 * len(non_ascii)


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode ``data`` as the declared charset would want it read; never raises.

    Declared: the superset codec(s) strictly, then UTF-8 strictly, then the declared codec with
    replacement characters. Undeclared: UTF-8, then GB18030 (when it reads as Chinese), then
    windows-1252, then Latin-1 (which always succeeds).
    """
    if not data:
        return ""
    codec = codec_name(charset)
    if codec is not None and codec != "ascii":
        for candidate in _SUPERSETS.get(codec, (codec,)):
            text = _strict(data, candidate)
            if text is not None:
                return text.removeprefix("\ufeff")
        if codec != "utf_8":
            text = _strict(data, "utf-8")
            if text is not None:
                return text.removeprefix("\ufeff")
        if codec == "utf_8":
            text = _strict(data, "gb18030")
            if text is not None and _is_plausible_chinese(text):
                return text
        return data.decode(_SUPERSETS.get(codec, (codec,))[0], errors="replace").removeprefix("\ufeff")
    return guess_decode(data)


def guess_decode(data: bytes) -> str:
    """Decode bytes of unknown charset: UTF-8, then plausible GB18030, then windows-1252 / Latin-1."""
    text = _strict(data, "utf-8")
    if text is not None:
        return text.removeprefix("\ufeff")
    text = _strict(data, "gb18030")
    if text is not None and _is_plausible_chinese(text):
        return text
    text = _strict(data, "cp1252")
    if text is not None:
        return text
    return data.decode("latin-1")


def unsurrogate(value: str) -> str:
    """Turn raw 8-bit header bytes (kept by the parser as surrogate escapes) into text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    return guess_decode(value.encode("utf-8", "surrogateescape"))


def unfold(value: str) -> str:
    """RFC 5322 unfolding: a line break followed by white space is not part of the value."""
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", "")


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?]*?)\?=")


def _b_decode(text: str) -> bytes:
    """Lenient base64: ignore junk characters and fix missing padding."""
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", text)
    cleaned = cleaned[: len(cleaned) - len(cleaned) % 4] if len(cleaned) % 4 == 1 else cleaned
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned)
    except (binascii.Error, ValueError):
        return b""


def _q_decode(text: str) -> bytes:
    raw = text.replace("_", " ").encode("ascii", "surrogateescape")
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)


def decode_header(value: str | None) -> str:
    """Decode an unstructured header value: RFC 2047 words in any charset, raw 8-bit text too.

    Adjacent encoded words in the same charset are joined *before* decoding because some
    clients split a multi-byte character across two words; white space between encoded words
    is dropped as RFC 2047 requires.
    """
    if not value:
        return ""
    value = unfold(value)
    pieces: list[str] = []
    pending: list[bytes] = []
    pending_charset: str | None = None
    position = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending:
            pieces.append(decode_bytes(b"".join(pending), pending_charset))
        pending, pending_charset = [], None

    for match in _ENCODED_WORD.finditer(value):
        between = value[position:match.start()]
        charset = match.group(1).split("*", 1)[0]
        if between and not (pending and between.isspace()):
            flush()
            pieces.append(unsurrogate(between))
        elif pending and codec_name(charset) != codec_name(pending_charset):
            flush()
        data = _b_decode(match.group(3)) if match.group(2) in "Bb" else _q_decode(match.group(3))
        pending.append(data)
        pending_charset = charset
        position = match.end()
    flush()
    pieces.append(unsurrogate(value[position:]))
    text = "".join(pieces)
    return "".join(ch if ch.isprintable() or ch == "\t" else " " for ch in text).strip()


def _split_params(value: str) -> list[str]:
    """Split a MIME header on ';' outside quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\" and quoted:
            current.append(ch)
            escaped = True
        elif ch == '"':
            quoted = not quoted
            current.append(ch)
        elif ch == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value.strip('"')


def parse_mime_header(value: str | None) -> tuple[str, dict[str, str]]:
    """Split Content-Type / Content-Disposition into its lower-cased value and decoded params.

    Parameters are returned as text: RFC 2231 (``filename*=gbk''%B1%A8``, continuations
    ``filename*0*=``), RFC 2047 words inside quotes (Outlook, Foxmail) and raw 8-bit names are
    all decoded here with the same charset rules as bodies.
    """
    if not value:
        return "", {}
    parts = _split_params(unfold(value))
    main = parts[0].strip().lower()
    simple: dict[str, str] = {}
    sections: dict[str, dict[int, tuple[bool, str]]] = {}
    for part in parts[1:]:
        if "=" not in part:
            continue
        key, _, raw = part.partition("=")
        key = key.strip().lower()
        match = re.fullmatch(r"([^*\s]+)(?:\*(\d+))?(\*)?", key)
        if not match:
            continue
        name, index, extended = match.group(1), match.group(2), bool(match.group(3))
        if index is None and not extended:
            simple.setdefault(name, _unquote(raw))
        else:
            sections.setdefault(name, {}).setdefault(int(index or 0), (extended, _unquote(raw)))
    params = {name: decode_header(text) for name, text in simple.items()}
    for name, pieces in sections.items():
        charset: str | None = None
        data = b""
        for order, (extended, text) in enumerate(pieces[i] for i in sorted(pieces)):
            if extended:
                if order == 0 and text.count("'") >= 2:
                    charset, _, text = text.split("'", 2)
                data += unquote_to_bytes(text.encode("ascii", "surrogateescape"))
            else:
                data += text.encode("utf-8", "surrogateescape")
        decoded = decode_bytes(data, charset) if charset else guess_decode(data)
        params[name] = decode_header(decoded) if "=?" in decoded else decoded
    return main, params


def parse_sender(value: str | None) -> tuple[str | None, str | None]:
    """Display name (decoded) and lower-cased address of a From-like header."""
    if not value:
        return None, None
    name, address = parseaddr(unfold(value))
    if not address and not name:
        # parseaddr gives up on some broken headers; take the first thing that looks like one
        found = re.search(r"[^\s<>\"',;:]+@[^\s<>\"',;:]+", unfold(value))
        address = found.group(0) if found else ""
    name = decode_header(name).strip().strip('"').strip() or None
    address = unsurrogate(address).strip()
    if "@" not in address:
        return name or decode_header(address) or None, None
    return name, address.lower()


def parse_address_list(values: list[str]) -> list[str]:
    """Lower-cased addresses of To / Cc / Reply-To headers, in order, without duplicates."""
    found: list[str] = []
    for _, address in getaddresses([unfold(v) for v in values]):
        address = unsurrogate(address).strip().lower()
        if "@" in address and address not in found:
            found.append(address)
    return found


def message_ids(value: str | None) -> list[str]:
    """Message-IDs in a Message-ID / In-Reply-To / References value, without angle brackets.

    Bracketed ids are taken as they are; a value without brackets (some clients) is split on
    white space and kept where a token looks like an id.
    """
    if not value:
        return []
    value = unfold(value)
    ids = [m.strip() for m in re.findall(r"<([^<>]*)>", value)]
    if not ids:
        ids = [token.strip(",;\"'") for token in value.split() if "@" in token]
    return [unsurrogate(i) for i in ids if i and not any(ch.isspace() for ch in i)]
