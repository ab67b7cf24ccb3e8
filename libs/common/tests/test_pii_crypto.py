"""helpdesk_common.pii_crypto: the keyring, its tokens, blind indexes."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk_common.pii_crypto import (
    Keyring,
    PiiDecryptError,
    PiiKeyError,
    blind_index,
    generate_key,
    key_id_of,
    looks_encrypted,
    new_settings,
    parse_index_key,
)

K1, K2 = generate_key(), generate_key()
CTX = "customer_identities.value"


def ring(spec: str) -> Keyring:
    return Keyring.from_settings(spec)


@pytest.mark.parametrize("plain", ["alice@example.com", "+8613800138000", "张伟", "北京市朝阳区建国路 88 号 3 单元",
                                   "", " spaces kept ", "emoji 🙂 and \u0000 NUL", "x" * 5000])
def test_round_trip(plain):
    keyring = ring(f"k1:{K1}")
    token = keyring.encrypt(plain, context=CTX)
    assert token.startswith("v1.k1.")
    assert plain == keyring.decrypt(token, context=CTX)
    if plain:
        assert plain not in token and plain.encode() not in base64.urlsafe_b64decode(token.split(".")[2] + "==")


def test_each_encryption_has_its_own_nonce():
    keyring = ring(f"k1:{K1}")
    assert keyring.encrypt("a@b.c", context=CTX) != keyring.encrypt("a@b.c", context=CTX)


def test_another_context_is_refused():
    keyring = ring(f"k1:{K1}")
    token = keyring.encrypt("alice@example.com", context=CTX)
    with pytest.raises(PiiDecryptError, match="another context"):
        keyring.decrypt(token, context="customers.name")


def test_another_key_with_the_same_kid_is_refused():
    token = ring(f"k1:{K1}").encrypt("alice@example.com", context=CTX)
    with pytest.raises(PiiDecryptError):
        ring(f"k1:{K2}").decrypt(token, context=CTX)


@pytest.mark.parametrize("position", [0, 5, 11, 12, 20, -1])
def test_tampering_is_refused(position):
    keyring = ring(f"k1:{K1}")
    token = keyring.encrypt("alice@example.com", context=CTX)
    version, kid, body = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[position] ^= 0x01
    forged = f"{version}.{kid}.{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"
    with pytest.raises(PiiDecryptError, match="authenticate"):
        keyring.decrypt(forged, context=CTX)


@pytest.mark.parametrize("token,message", [
    ("alice@example.com", "not a PII token"),
    ("v1.k1", "not a PII token"),
    ("v1.k1.", "not a PII token"),
    ("v2.k1.AAAA", "unknown token version"),
    ("v1.k9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "not configured"),
    ("v1.k1.AAAA", "too short"),
    ("v1.k1.!!!!", "not base64"),
    ("v1.k 1.AAAA", "not a PII token"),
])
def test_malformed_tokens_are_refused(token, message):
    with pytest.raises(PiiDecryptError, match=message):
        ring(f"k1:{K1}").decrypt(token, context=CTX)


def test_rotation_old_kid_still_decrypts_and_new_writes_use_the_current_kid():
    before = ring(f"k1:{K1}")
    old = before.encrypt("13800138000", context=CTX)
    after = ring(f"k2:{K2},k1:{K1}")
    assert after.current_kid == "k2" and after.kids == ("k2", "k1")
    assert after.decrypt(old, context=CTX) == "13800138000"
    new = after.encrypt("13800138000", context=CTX)
    assert key_id_of(new) == "k2" and key_id_of(old) == "k1"
    assert after.is_current(new) and not after.is_current(old)
    assert not after.is_current("plaintext")
    # once k1 is dropped, what it sealed is refused with a clear message
    with pytest.raises(PiiDecryptError, match="'k1', which is not configured"):
        ring(f"k2:{K2}").decrypt(old, context=CTX)


def test_standard_and_urlsafe_base64_keys_are_the_same_key():
    raw = os.urandom(32)
    std = base64.b64encode(raw).decode()
    url = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    token = ring(f"k1:{std}").encrypt("x", context=CTX)
    assert ring(f"k1:{url}").decrypt(token, context=CTX) == "x"


@pytest.mark.parametrize("spec,message", [
    ("", "is empty"),
    ("   ", "is empty"),
    (K1, "entry 1 is not kid:base64key"),
    (f"k1:{K1},", "entry 2 is empty"),
    ("k1:", "entry 1 is not kid:base64key"),
    (f":{K1}", "entry 1 is not kid:base64key"),
    ("k1:not base64!", "not base64"),
    (f"k1:{base64.b64encode(os.urandom(16)).decode()}", "must be 32 bytes"),
    (f"k1:{K1},k1:{K2}", "listed twice"),
    (f"k.1:{K1}", "1-32 characters"),
    (f"{'k' * 33}:{K1}", "1-32 characters"),
], ids=["empty", "blank", "no-kid", "trailing-comma", "no-key", "empty-kid", "not-base64", "16-bytes", "kid-twice",
        "dotted-kid", "long-kid"])  # named: the keys are random, and pytest-xdist's workers must collect the same ids
def test_a_bad_spec_is_refused_with_a_clear_error(spec, message):
    with pytest.raises(PiiKeyError, match=message) as info:
        Keyring.from_settings(spec, setting="CUSTOMER_PII_KEYS")
    assert "CUSTOMER_PII_KEYS" in str(info.value)
    # the error never repeats the key material
    assert K1 not in str(info.value) and K2 not in str(info.value)


def test_index_key_parsing():
    assert len(parse_index_key(K1)) == 32
    with pytest.raises(PiiKeyError, match="CUSTOMER_PII_INDEX_KEY is empty"):
        parse_index_key("", setting="CUSTOMER_PII_INDEX_KEY")
    with pytest.raises(PiiKeyError, match="32 bytes"):
        parse_index_key(base64.b64encode(b"short").decode())


def test_blind_index_is_keyed_deterministic_and_separated_by_context():
    key, other = parse_index_key(K1), parse_index_key(K2)
    a = blind_index("alice@example.com", key=key, context="email")
    assert a == blind_index("alice@example.com", key=key, context="email")
    assert len(a) == 64 and int(a, 16) >= 0
    assert a != blind_index("alice@example.com", key=other, context="email")
    assert a != blind_index("alice@example.com", key=key, context="phone")
    assert a != blind_index("bob@example.com", key=key, context="email")


def test_blind_index_normalises_only_unicode_form_and_whitespace():
    key = parse_index_key(K1)
    # NFC: a composed and a decomposed é are one value; trimming
    assert blind_index("caf\u00e9", key=key, context="n") == blind_index("cafe\u0301 ", key=key, context="n")
    # case is kept: WeChat openids are case-sensitive (e-mail is lower-cased by the caller)
    assert blind_index("oAbC", key=key, context="n") != blind_index("oabc", key=key, context="n")
    # the context cannot be shifted into the value
    assert blind_index("x\0y", key=key, context="c") != blind_index("y", key=key, context="c\0x")


@settings(max_examples=200, deadline=None)
@given(plain=st.text(max_size=300), context=st.text(min_size=1, max_size=40))
def test_round_trip_property(plain, context):
    keyring = ring(f"k2:{K2},k1:{K1}")
    token = keyring.encrypt(plain, context=context)
    assert looks_encrypted(token)
    assert keyring.decrypt(token, context=context) == plain


def test_new_settings_make_a_working_keyring():
    values = new_settings("CUSTOMER_")
    keyring = Keyring.from_settings(values["CUSTOMER_PII_KEYS"])
    assert keyring.current_kid == "k1"
    assert len(parse_index_key(values["CUSTOMER_PII_INDEX_KEY"])) == 32


def _b64decode_by_regex(text: str) -> bytes:
    """What ``_b64decode`` did before it used ``a2b_base64``'s strict mode (the reference)."""
    text = text.strip()
    padded = text + "=" * (-len(text) % 4)
    return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)


@settings(max_examples=600, deadline=None)
@given(st.one_of(
    st.binary(max_size=80).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    st.binary(max_size=80).map(lambda b: base64.b64encode(b).decode()),
    st.text(alphabet="AZaz09+/-_= \n.\u00e9", max_size=40),
))
def test_the_strict_base64_decoder_accepts_and_refuses_what_the_regex_one_did(text) -> None:
    from helpdesk_common.pii_crypto import _b64decode

    try:
        expected = _b64decode_by_regex(text)
    except ValueError:  # binascii.Error is a ValueError
        with pytest.raises(ValueError):
            _b64decode(text)
        return
    assert _b64decode(text) == expected
