"""E-mail domains of organisations (pure): their stored form and the public webmail list.

A customer whose e-mail domain is one of an organisation's domains joins it when the customer is
created or the address is added (Zendesk's ``domain_names``). Public webmail domains never make
anyone join anything: half of a company's customers write from qq.com or gmail.com, so such a
domain is refused on an organisation rather than silently ignored.
"""

from __future__ import annotations

import unicodedata

#: label characters are anything visible but a dot, @, / or a backslash (IDN labels in Unicode too);
#: \x85 and \ufeff are named because ``\s`` differs between pydantic's Rust regex (NEL is space) and
#: ECMA-262, the document's dialect (BOM is space): with both, every engine refuses the same labels
_LABEL = r"[^\s\x85\ufeff.@/\\\x00-\x1f\x7f]{1,63}"
DOMAIN_PATTERN = rf"^{_LABEL}(?:\.{_LABEL})+\.?$"
MAX_DOMAINS = 50

#: consumer mailbox providers (China first, then international); lower case, as stored
PUBLIC_EMAIL_DOMAINS = frozenset({
    "qq.com", "vip.qq.com", "foxmail.com", "163.com", "vip.163.com", "126.com", "vip.126.com", "yeah.net",
    "188.com", "sina.com", "sina.cn", "vip.sina.com", "sohu.com", "vip.sohu.com", "aliyun.com", "139.com",
    "189.cn", "wo.cn", "21cn.com", "tom.com", "263.net", "outlook.cn",
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "live.com", "live.cn",
    "msn.com", "yahoo.com", "yahoo.com.cn", "yahoo.co.jp", "yahoo.co.uk", "ymail.com", "icloud.com", "me.com",
    "mac.com", "aol.com", "proton.me", "protonmail.com", "pm.me", "gmx.com", "gmx.de", "gmx.net", "web.de",
    "mail.com", "yandex.ru", "yandex.com", "mail.ru", "naver.com", "daum.net", "hanmail.net", "zoho.com",
    "tutanota.com", "fastmail.com", "hey.com",
})


def domain_key(domain: str) -> str:
    """The stored form: NFKC, case-folded, no trailing dot. E-mail identities are lower-cased
    the same way, so the key of an address's domain finds the organisation."""
    text = domain.strip()
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return text.casefold().rstrip(".")


def is_public(domain: str) -> bool:
    return domain_key(domain) in PUBLIC_EMAIL_DOMAINS


def joinable(domain: str | None) -> str | None:
    """The key to look an organisation up by, or None for no domain or a public webmail one."""
    if not domain:
        return None
    key = domain_key(domain)
    return None if key in PUBLIC_EMAIL_DOMAINS else key
