"""Consumers of customer-svc's customer-life events (merges, identity removals, survey answers,
churn risk); they run in the projections consumer's transaction on its bare asyncpg connection."""

from __future__ import annotations

from typing import Any

from helpdesk_common import events

from . import service


async def handle_customer_merged(conn: Any, event: events.CustomerMerged) -> None:
    d = event.data
    await service.on_customer_merged(conn, merged_id=d.merged_id, survivor_id=d.survivor_id,
                                     identities=[(i.kind, i.value) for i in d.identities], actor=d.actor)


async def handle_identity_removed(conn: Any, event: events.CustomerIdentityRemoved) -> None:
    d = event.data
    await service.on_identity_removed(conn, customer_id=d.customer_id, kind=d.identity.kind, value=d.identity.value)


async def handle_survey_answered(conn: Any, event: events.SurveyAnswered) -> None:
    await service.on_survey_answered(conn, event.data)


async def handle_churn_risk_changed(conn: Any, event: events.InsightChurnRiskChanged) -> None:
    await service.on_churn_risk_changed(conn, event.data)


CUSTOMER_LOOP_HANDLERS = {
    "customer.merged": handle_customer_merged,
    "customer.identity_removed": handle_identity_removed,
    "survey.answered": handle_survey_answered,
    "insight.churn_risk_changed": handle_churn_risk_changed,
}
