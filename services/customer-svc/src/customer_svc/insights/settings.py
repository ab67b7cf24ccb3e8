"""Settings of the insight scoring, one place for all of them.

Each model reads its own environment prefix (12-factor, defaults that need no configuration)
and validates on construction, so a bad value stops the service at start-up with a message
naming the variable instead of scoring nonsense for a night. Tests build them with keyword
arguments.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

QUINTILES = 5

Days = Annotated[int, Field(ge=1, le=3650)]
Weight = Annotated[int, Field(ge=0, le=100)]
Saturation = Annotated[int, Field(ge=1, le=1000)]
Points = Annotated[int, Field(ge=1, le=100)]
HighFrom = Annotated[int, Field(ge=2, le=QUINTILES)]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class SegmentThresholds(BaseModel):
    """The quintile score from which R, F and M count as high (2-5, so that both classes can occur)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    r: HighFrom = 4
    f: HighFrom = 4
    m: HighFrom = 4


class RfmSettings(BaseSettings):
    """How RFM is computed (``CUSTOMER_RFM_*``; the thresholds as ``CUSTOMER_RFM_SEGMENT_HIGH_FROM__R``)."""

    model_config = SettingsConfigDict(env_prefix="CUSTOMER_RFM_", env_nested_delimiter="__", extra="ignore",
                                      frozen=True)

    window_days: Days = 365
    """F and M count the orders of this many days before ``as_of``."""
    base_currency: CurrencyCode = "CNY"
    """M is summed in this currency; other currencies need a rate."""
    min_population: Annotated[int, Field(ge=QUINTILES, le=1_000_000)] = QUINTILES
    """Below this many customers with orders, nobody is scored."""
    segment_high_from: SegmentThresholds = SegmentThresholds()


class ChurnSettings(BaseSettings):
    """Weights and shapes of the churn-risk factors (``CUSTOMER_CHURN_*``).

    A weight is the most points its factor can add; the defaults add up to more than 100 on
    purpose (the score is capped), so that two or three bad factors together reach "high"
    without every factor being bad."""

    model_config = SettingsConfigDict(env_prefix="CUSTOMER_CHURN_", extra="ignore", frozen=True)

    weight_order_frequency_drop: Weight = 30
    weight_order_overdue: Weight = 20
    weight_unresolved_tickets: Weight = 10
    weight_sla_breaches: Weight = 20
    weight_bad_csat: Weight = 15
    weight_detractor_nps: Weight = 10
    weight_repeat_contacts: Weight = 10

    recent_days: Days = 90
    """The recent window: orders, SLA breaches, bad CSAT and repeated contacts are counted in it."""
    baseline_days: Days = 365
    """The history before the recent window that the recent order rate is compared with."""
    min_baseline_orders: Saturation = 2
    """Fewer orders than this in the baseline: no habit to fall from, no frequency-drop points."""
    default_gap_days: Days = 90
    """The usual gap between orders assumed for a customer with one order."""
    overdue_full_ratio: Annotated[float, Field(gt=1, le=100)] = 3.0
    """Days since the last order, in usual gaps, at which the overdue factor is full."""
    unresolved_saturation: Saturation = 3
    breach_saturation: Saturation = 2
    bad_csat_saturation: Saturation = 2
    repeat_contact_saturation: Saturation = 3
    repeat_window_days: Days = 14
    """Two tickets on the same type or tag this close together make the second a repeated contact."""

    band_medium_from: Points = 40
    band_high_from: Points = 70
    episode_enter_at: Points = 70
    """A risk episode starts when the score reaches this..."""
    episode_leave_below: Points = 60
    """...and ends only when it falls below this (hysteresis: no flapping around one threshold)."""

    @model_validator(mode="after")
    def _ordered(self) -> ChurnSettings:
        if self.band_medium_from > self.band_high_from:
            raise ValueError("band_medium_from must not exceed band_high_from")
        if self.episode_leave_below > self.episode_enter_at:
            raise ValueError("episode_leave_below must not exceed episode_enter_at")
        return self
