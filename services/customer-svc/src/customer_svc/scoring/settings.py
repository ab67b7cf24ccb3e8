"""How the insight worker and the nightly run behave (``CUSTOMER_INSIGHTS_*``), apart from the
formulas' own settings (:mod:`customer_svc.insights.settings`)."""

from __future__ import annotations

import re
from datetime import time
from decimal import Decimal
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class InsightRunSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOMER_INSIGHTS_", extra="ignore", frozen=True)

    enabled: bool = True
    """Run the incremental worker and the scheduled/asked-for full runs in this replica."""
    poll_interval_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    batch: Annotated[int, Field(ge=1, le=5000)] = 500
    """Dirty customers scored per transaction."""
    lease_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    """A replica that stopped scoring a batch (or a full run) leaves it to another after this long."""
    full_batch: Annotated[int, Field(ge=100, le=50_000)] = 5000
    """Customers per transaction of a full run."""
    nightly_at: str = "02:00"
    """Local time (``CUSTOMER_TIME_ZONE``) of the nightly full run; empty: no schedule."""
    time_zone: str = Field("UTC", validation_alias=AliasChoices("CUSTOMER_TIME_ZONE", "CUSTOMER_INSIGHTS_TIME_ZONE"))
    rates: dict[str, Decimal] = Field(default_factory=dict, validation_alias=AliasChoices(
        "CUSTOMER_RFM_RATES", "CUSTOMER_INSIGHTS_RATES"))
    """Base-currency units per unit of another currency for M (JSON, ``{"USD": "7.1"}``); orders
    in a currency without a rate count for R and F only."""

    @field_validator("nightly_at")
    @classmethod
    def _clock(cls, value: str) -> str:
        if value and not _CLOCK.fullmatch(value):
            raise ValueError("CUSTOMER_INSIGHTS_NIGHTLY_AT must be HH:MM (24 h) or empty")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("CUSTOMER_TIME_ZONE must be an IANA time zone such as Asia/Shanghai") from None
        return value

    @field_validator("rates")
    @classmethod
    def _rates(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for code, rate in value.items():
            if not re.fullmatch(r"[A-Z]{3}", code) or not rate > 0:
                raise ValueError("CUSTOMER_RFM_RATES maps ISO 4217 codes to positive rates")
        return value

    @property
    def nightly_time(self) -> time | None:
        if not self.nightly_at:
            return None
        hours, minutes = self.nightly_at.split(":")
        return time(int(hours), int(minutes))
