"""Attachment rules every service that stores files shares (ticket-svc's messages, kb-svc's
articles): size and count limits, refused executables, safe names and media types, the download
headers, and content sniffing for the image types a page may show inline.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import PurePosixPath
from urllib.parse import quote

MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
#: per message (ticket-svc) or per article (kb-svc)
MAX_MESSAGE_ATTACHMENT_BYTES = 40 * 1024 * 1024
MAX_ATTACHMENTS = 20
#: executables and scripts someone could hand a reader to run
REFUSED_EXTENSIONS = frozenset({
    ".exe", ".bat", ".cmd", ".com", ".js", ".jse", ".vbs", ".vbe", ".scr", ".msi", ".msp", ".ps1", ".psm1",
    ".jar", ".hta", ".cpl", ".lnk", ".reg", ".pif", ".wsf", ".dll", ".sh", ".apk",
})
REFUSED_TYPES = frozenset({
    "application/x-msdownload", "application/x-msdos-program", "application/x-ms-installer",
    "application/vnd.microsoft.portable-executable", "application/x-sh", "application/java-archive",
    "application/javascript", "text/javascript", "application/hta",
})
#: a download is never rendered as a page: no script, no plugins, no loads, sandboxed
DOWNLOAD_CSP = "default-src 'none'; img-src 'self'; style-src 'none'; sandbox"


def safe_filename(name: str) -> str:
    """Keep the last path segment, no control characters, bounded length; never empty."""
    base = PurePosixPath(name.replace("\\", "/")).name
    base = "".join(ch for ch in base if ch.isprintable()).strip() or "attachment"
    return base[-255:]


#: ``type/subtype`` with RFC 6838 restricted names, lower case, no parameters: nothing that can
#: break or extend a response header (CR/LF) or fail to encode in one (non-Latin-1)
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
#: RFC 5987 attr-char beyond letters and digits (quote() keeps "_.-~" anyway)
_ATTR_CHARS = "!#$&+-.^_`|~"


def safe_content_type(content_type: str | None, filename: str) -> str:
    r"""The declared media type without parameters when it is a well-formed ``type/subtype``,
    else the one the file name suggests, else ``application/octet-stream``.

    Senders declare whatever they like, and the type is echoed in a download header: ``图片/png``
    could not be encoded there (a 500) and ``text/plain\r\nSet-Cookie: ...`` would have injected
    a header."""
    essence = (content_type or "").split(";")[0].strip().lower()
    if _MEDIA_TYPE.fullmatch(essence):
        return essence
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def content_disposition(filename: str, *, inline: bool = False) -> str:
    r"""``attachment`` (or ``inline``) with the name twice (RFC 6266): ``filename*`` in UTF-8
    percent-encoding (RFC 5987/8187) for every current client, and an ASCII ``filename``
    quoted-string for old ones, with ``\`` and ``"`` escaped and other characters replaced by
    ``_``. The name goes through ``safe_filename`` again, so a stored name cannot carry CR/LF."""
    name = safe_filename(filename)
    fallback = "".join(ch if " " <= ch <= "~" else "_" for ch in name)
    fallback = fallback.replace("\\", "\\\\").replace('"', '\\"')
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe=_ATTR_CHARS)}"


def refused_reason(filename: str, content_type: str | None, size: int) -> str | None:
    """Why one file breaks a per-file rule (too large, an executable), or None."""
    if size > MAX_ATTACHMENT_BYTES:
        return f"{filename}: larger than {MAX_ATTACHMENT_BYTES} bytes"
    suffix = PurePosixPath(safe_filename(filename).lower()).suffix
    if suffix in REFUSED_EXTENSIONS or safe_content_type(content_type, filename) in REFUSED_TYPES:
        return f"{filename}: executable files are not accepted"
    return None


#: raster image types a page may show inline, by their leading bytes (SVG is not one: it can
#: carry script; neither is anything whose bytes do not match)
_IMAGE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


def sniff_image_type(content: bytes) -> str | None:
    """The raster image type ``content`` really is (PNG, GIF, JPEG, WebP), or None."""
    for signature, media_type in _IMAGE_SIGNATURES:
        if content.startswith(signature):
            return media_type
    if len(content) >= 12 and content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None
