"""Tier rules: an ordered list, first match wins, no match keeps the current tier. Pure.

A rule is ``{"when": {...conditions...}, "tier": "gold"}``; all conditions of a rule must hold
(AND), a rule needs at least one, and the list is tried in order. Keeping the current tier
when nothing matches means rules only move the customers they are about: a tier a
supervisor set by hand stays unless some rule claims the customer.

Conditions read the customer's RFM values (monetary in the RFM base currency over the RFM
window, frequency over the same window), scores, segment and churn-risk score. A customer
without orders has monetary 0 and frequency 0, and no scores or segment: a condition on
those does not hold for them. The schema is what the API validates (422 naming the field,
e.g. ``rules[2].when.segment_in[0]``); :func:`decide_tier` is the evaluation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from customer_svc.customers.schemas import Tier
from customer_svc.insights.segments import SegmentKey
from helpdesk_common.validation import StrictModel, fold_key

MAX_RULES = 100


_AMOUNT_TEXT = re.compile(r"[0-9]{1,15}(\.[0-9]{1,4})?")
#: 15 digits: every integer up to it is exact in a double, so a client (or a test generator) that
#: reads the document's maximum as a float gets this very number back, not the next power of ten
_AMOUNT_MAX = 10**15 - 1


def _amount(value: object) -> Decimal:
    """An amount in the RFM base currency, from a decimal as text or an integer (JSON's 5.0 is
    an integer too). Checked here in one place rather than as a union of types, so an error names
    the field itself, and the document states exactly this shape (a 20-digit number or a text
    pydantic's Decimal refuses would otherwise be schema-valid and refused)."""
    if isinstance(value, bool):
        raise ValueError("must be a Decimal as text or an integer, not a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must be greater than or equal to 0")
        if value > _AMOUNT_MAX:
            raise ValueError("must have at most 15 digits")
        return Decimal(value)
    if not isinstance(value, str):
        raise ValueError("must be a Decimal as text (\"5000.00\") or an integer")
    if _AMOUNT_TEXT.fullmatch(value):
        return Decimal(value)
    if value.strip().lstrip("+-").casefold() in {"nan", "snan", "inf", "infinity"}:
        raise ValueError("must be a finite decimal")
    if value.strip().startswith("-"):
        raise ValueError("must be greater than or equal to 0")
    raise ValueError("must be digits (at most 15) with at most 4 decimals, as \"5000.00\"")


Amount = Annotated[
    Decimal, BeforeValidator(_amount), PlainSerializer(str, return_type=str),
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": "^" + _AMOUNT_TEXT.pattern + "$"},
                              {"type": "integer", "minimum": 0, "maximum": _AMOUNT_MAX}],
                    "description": "A decimal as text (\"5000.00\") or an integer, not negative, at most 4 decimals."}),
]
Count = Annotated[int, Field(ge=0, le=1_000_000_000)]
QuintileScore = Annotated[int, Field(ge=1, le=5)]
RiskScore = Annotated[int, Field(ge=0, le=100)]


class TierCondition(StrictModel):
    """What a customer must satisfy; every field given must hold."""

    monetary_at_least: Amount | None = None
    monetary_below: Amount | None = None
    frequency_at_least: Count | None = None
    r_at_least: QuintileScore | None = None
    f_at_least: QuintileScore | None = None
    m_at_least: QuintileScore | None = None
    segment_in: Annotated[list[SegmentKey], Field(min_length=1, max_length=8)] | None = None
    churn_risk_at_least: RiskScore | None = None
    current_tier_in: Annotated[list[Tier], Field(min_length=1, max_length=50)] | None = None
    """Lets a rule move only customers of some tiers (e.g. promote silver to gold, never demote platinum)."""

    @model_validator(mode="after")
    def _meaningful(self) -> TierCondition:
        """Rules across the fields, which no JSON Schema states: their error codes (``cross_field``,
        ``range``) say so, as the other resources' do."""
        if all(value is None for value in self.__dict__.values()):
            raise PydanticCustomError("cross_field", "a rule needs at least one condition")
        if (self.monetary_at_least is not None and self.monetary_below is not None
                and self.monetary_at_least >= self.monetary_below):
            raise PydanticCustomError("range", "monetary_at_least must be below monetary_below, or the rule never matches")
        return self


class TierRule(StrictModel):
    when: TierCondition
    tier: Tier


class TierRules(StrictModel):
    """The body of the rules resource: the whole ordered list, replaced at once."""

    rules: Annotated[list[TierRule], Field(max_length=MAX_RULES)]


@dataclass(frozen=True, slots=True)
class TierFacts:
    """What the conditions look at, for one customer."""

    current_tier: str | None = None
    monetary: Decimal = Decimal(0)
    frequency: int = 0
    r: int | None = None
    f: int | None = None
    m: int | None = None
    segment: SegmentKey | None = None
    churn_score: int | None = None


@dataclass(frozen=True, slots=True)
class TierDecision:
    tier: str | None
    """The tier after the rules (the current one when none matched)."""
    rule_index: int | None
    """The 0-based index of the matching rule, None when none matched."""
    changed: bool


def _at_least(value: int | None, bound: int | None) -> bool:
    return bound is None or (value is not None and value >= bound)


def matches(condition: TierCondition, facts: TierFacts) -> bool:
    if condition.monetary_at_least is not None and facts.monetary < condition.monetary_at_least:
        return False
    if condition.monetary_below is not None and facts.monetary >= condition.monetary_below:
        return False
    if condition.frequency_at_least is not None and facts.frequency < condition.frequency_at_least:
        return False
    if not (_at_least(facts.r, condition.r_at_least) and _at_least(facts.f, condition.f_at_least)
            and _at_least(facts.m, condition.m_at_least)
            and _at_least(facts.churn_score, condition.churn_risk_at_least)):
        return False
    if condition.segment_in is not None and facts.segment not in condition.segment_in:
        return False
    if condition.current_tier_in is not None:
        current = fold_key(facts.current_tier) if facts.current_tier is not None else None
        if current not in condition.current_tier_in:
            return False
    return True


def decide_tier(rules: Sequence[TierRule], facts: TierFacts) -> TierDecision:
    """The first matching rule's tier, else the current tier unchanged."""
    current = fold_key(facts.current_tier) if facts.current_tier is not None else None
    for index, rule in enumerate(rules):
        if matches(rule.when, facts):
            return TierDecision(tier=rule.tier, rule_index=index, changed=rule.tier != current)
    return TierDecision(tier=facts.current_tier, rule_index=None, changed=False)
