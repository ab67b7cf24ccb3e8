"""The one consumer's handler map (routing.py): every domain's handler of a type runs, in order,
and the webhook fan-out follows the subscriptions without replacing the fixed handlers."""

from __future__ import annotations

from notify_svc.routing import EventRouting, compose


def _recorder(calls: list[str], name: str):
    async def handler(conn, event) -> None:
        calls.append(f"{name}:{event}")

    return handler


async def test_compose_runs_every_handler_of_a_type_in_order() -> None:
    calls: list[str] = []
    first = {"ticket.created": _recorder(calls, "notify"), "sla.breached": _recorder(calls, "notify")}
    second = {"ticket.created": _recorder(calls, "webhook"), "ticket.reply_requested": _recorder(calls, "reply")}
    merged = compose(first, second)
    assert set(merged) == {"ticket.created", "sla.breached", "ticket.reply_requested"}
    await merged["ticket.created"](None, "e1")
    await merged["ticket.reply_requested"](None, "e2")
    assert calls == ["notify:e1", "webhook:e1", "reply:e2"]
    assert merged["sla.breached"] is first["sla.breached"]  # a lone handler is not wrapped


class _FakeWebhooks:
    """Stands in for deliveries.handlers.WebhookRouting: its map follows the subscribed types."""

    def __init__(self, calls: list[str]) -> None:
        self._calls = calls
        self.handlers = {"ticket.created": _recorder(calls, "webhook"), "customer.created": _recorder(calls, "webhook")}
        self.wanted: set[str] = set()

    async def refresh(self, conn) -> None:
        self.handlers = {t: _recorder(self._calls, "webhook") for t in self.wanted}


async def test_refresh_narrows_the_fan_out_in_place_and_keeps_the_fixed_handlers() -> None:
    calls: list[str] = []
    webhooks = _FakeWebhooks(calls)
    routing = EventRouting({"ticket.created": _recorder(calls, "notify")}, webhooks)
    held = routing.handlers  # what the consumer holds
    assert set(held) == {"ticket.created", "customer.created"}

    await routing.refresh(None)  # no subscription: only the notification handler is left
    assert held is routing.handlers and set(held) == {"ticket.created"}
    await held["ticket.created"](None, "e1")
    assert calls == ["notify:e1"]

    webhooks.wanted = {"ticket.created", "sla.breached"}
    await routing.refresh(None)
    assert set(held) == {"ticket.created", "sla.breached"}
    await held["ticket.created"](None, "e2")
    assert calls == ["notify:e1", "notify:e2", "webhook:e2"]
