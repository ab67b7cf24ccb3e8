"""Survey rules as plain functions over plain data (no I/O): when a ticket's status change asks
for a survey, how a survey reaches its customer, which language its page speaks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: settings bounds (docs/customers.md, "Surveys"): a week of delay at most, ten years of interval
CSAT_DELAY_MAX_MINUTES = 10_080
NPS_INTERVAL_MAX_DAYS = 3_650


def triggers_survey(from_status: str, to_status: str) -> bool:
    """A ticket is done for its customer when it is solved, or closed without having been solved
    just before (closed straight from open or pending). ``solved -> closed`` is the same resolution
    closing itself and asks nothing new; a reopened ticket solved again does trigger, and the
    one-CSAT-per-ticket index and the NPS interval decide that nothing more is sent."""
    return from_status != to_status and (to_status == "solved" or (to_status == "closed" and from_status != "solved"))


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a survey goes: the channel and what notify-svc needs to address it there."""

    channel: str
    recipient: dict[str, str]
    route: dict[str, Any] = field(default_factory=dict)


def delivery_for(identities: Iterable[tuple[str, str]], *, preferred: str | None = None) -> Delivery | None:
    """The way to reach a customer with a survey, or None (the survey is skipped).

    E-mail first: a link in a mail works in any browser and is what every deployment can send.
    WeChat and WeCom only for customers with no address, and only through the id of that
    platform. ``preferred`` (the ticket's channel) wins among the ones the customer has, so a
    customer who wrote on WeChat is asked there when notify-svc can reach them."""
    found: dict[str, str] = {}
    for kind, value in identities:
        found.setdefault(kind, value)
    options: dict[str, Delivery] = {}
    if "email" in found:
        options["email"] = Delivery("email", {"email": found["email"]})
    if "wechat_openid" in found:
        options["wechat"] = Delivery("wechat", {"wechat_openid": found["wechat_openid"]},
                                     {"openid": found["wechat_openid"]})
    if "wecom_external_userid" in found:
        options["wecom"] = Delivery("wecom", {"external_id": f"wecom:{found['wecom_external_userid']}"},
                                    {"external_userid": found["wecom_external_userid"]})
    if preferred in options and preferred != "email" and "email" not in options:
        return options[preferred]
    for channel in ("email", "wechat", "wecom"):
        if channel in options:
            return options[channel]
    return None


def page_language(language: str | None) -> str:
    """The page's language: Chinese for any ``zh`` tag, English otherwise (the two the product speaks)."""
    return "zh-CN" if (language or "").lower().startswith("zh") else "en"
