"""GET /v1/stream on the real database and broker, served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from helpdesk_common import events
from helpdesk_common.testing import produce, wait_for

from .conftest import SseReader, new_gateway, serve, user_token

pytestmark = pytest.mark.timeout(180)

NOW = datetime.now(UTC)


def created(tid: uuid.UUID, *, team: uuid.UUID | None = None, assignee: str | None = None) -> Any:
    return events.TicketCreated(source="ticket-svc", subject=str(tid), data=events.TicketCreatedData(
        ticket_id=tid, subject="s", status="new", priority="normal", requester=events.Requester(email="a@b.co"),
        created_by="channel:k", created_at=NOW, team_id=team, assignee_id=assignee))


def message(tid: uuid.UUID, *, team: uuid.UUID | None, assignee: str | None, public: bool) -> Any:
    return events.TicketMessageAdded(source="ticket-svc", subject=str(tid), data=events.TicketMessageAddedData(
        ticket_id=tid, team_id=team, assignee_id=assignee, message_id=uuid.uuid4(), author_kind="agent",
        public=public, created_at=NOW))


def assigned(tid: uuid.UUID, *, team: uuid.UUID | None, assignee: str | None, previous: str | None) -> Any:
    return events.TicketAssigned(source="ticket-svc", subject=str(tid), data=events.TicketAssignedData(
        ticket_id=tid, team_id=team, assignee_id=assignee, previous_assignee_id=previous, reason="manual",
        assigned_at=NOW))


def breached(tid: uuid.UUID, *, team: uuid.UUID | None, assignee: str | None = None) -> Any:
    return events.SlaBreached(source="sla-svc", subject=str(tid), data=events.SlaAlertData(
        ticket_id=tid, metric="first_response", due_at=NOW, team_id=team, assignee_id=assignee))


async def stored(db_url: str) -> int:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(text("SELECT count(*) FROM stream_events")))
    finally:
        await engine.dispose()


async def wait_stored(db_url: str, n: int) -> None:
    async def enough() -> bool:
        return await stored(db_url) >= n

    await wait_for(enough, timeout=60, interval=0.2)


def ids(frames: list[dict[str, Any]]) -> list[str]:
    return [f["json"]["data"].get("message_id") or f["json"]["ticket_id"] for f in frames]


async def test_agents_see_their_teams_and_assignments_admins_see_all(infra, gateway_env, gateway_db, ticket_svc,
                                                                  monkeypatch):
    # the teams cache outlives the test (30 s by default: a loaded runner took 53 s and asked twice)
    monkeypatch.setenv("GATEWAY_AGENT_TEAMS_CACHE_TTL_S", "600")
    team_a, team_b, team_c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    agent_id, agent = user_token("agent")
    loner_id, loner = user_token("agent")  # no agent profile (404): sees only own assignments
    _, admin = user_token("admin")
    _, supervisor = user_token("supervisor")
    ticket_svc.teams[agent_id] = [str(team_a)]
    t = [uuid.uuid4() for _ in range(8)]
    batch = [
        created(t[0], team=team_a),                                     # agent: own team
        created(t[1], team=team_b, assignee=agent_id),                  # agent: assigned to them
        created(t[2], team=team_b),                                     # nobody but admins
        message(t[3], team=team_a, assignee=None, public=False),        # internal note, own team
        breached(t[4], team=team_c),                                    # nobody but admins
        assigned(t[5], team=team_b, assignee=loner_id, previous=agent_id),  # agent: moved away; loner: now theirs
        message(t[6], team=team_c, assignee=loner_id, public=True),     # loner's
        created(t[7]),                                                  # no team: triage, every agent (as in REST)
    ]
    marker = created(uuid.uuid4(), team=team_a, assignee=loner_id)      # everyone sees it, stored last
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        async with SseReader(client, "/v1/stream", agent) as s_agent, SseReader(client, "/v1/stream", loner) as s_loner, \
                SseReader(client, "/v1/stream", admin) as s_admin, SseReader(client, "/v1/stream", supervisor) as s_sup:
            for s in (s_agent, s_loner, s_admin, s_sup):
                assert s.response.status_code == 200
                assert s.response.headers["content-type"].startswith("text/event-stream")
                assert (await s.next(10)) == {"retry": "3000"}
            await produce(infra.kafka_bootstrap, gateway_env, *batch)
            await wait_stored(gateway_db, len(batch))
            await produce(infra.kafka_bootstrap, gateway_env, marker)
            is_marker = lambda f: f["json"]["data"].get("ticket_id") == str(marker.data.ticket_id)  # noqa: E731
            seen_agent = (await s_agent.until_event(is_marker))[:-1]
            seen_loner = (await s_loner.until_event(is_marker))[:-1]
            seen_admin = (await s_admin.until_event(is_marker))[:-1]
            seen_sup = (await s_sup.until_event(is_marker))[:-1]

    def tickets(frames: list[dict[str, Any]]) -> set[str]:
        return {f["json"]["ticket_id"] for f in frames}

    assert tickets(seen_agent) == {str(t[i]) for i in (0, 1, 3, 5, 7)}
    assert tickets(seen_loner) == {str(t[5]), str(t[6]), str(t[7])}
    assert tickets(seen_admin) == tickets(seen_sup) == {str(x) for x in t}
    # the frame format: id = seq (increasing), event = type, compact JSON data
    seqs = [int(f["id"]) for f in seen_admin]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    note = next(f for f in seen_agent if f["event"] == "ticket.message_added")
    assert set(note["json"]) == {"type", "ticket_id", "team_id", "assignee_id", "data", "time"}
    assert note["json"]["team_id"] == str(team_a) and note["json"]["data"]["public"] is False
    assert " " not in note["data"]  # compact
    breach = next(f for f in seen_admin if f["event"] == "sla.breached")
    assert breach["json"]["type"] == "sla.breached" and breach["json"]["data"]["metric"] == "first_response"
    # one /v1/agents/me per user (cached), none for admins / supervisors
    assert ticket_svc.me_calls.count(agent_id) == 1 and ticket_svc.me_calls.count(loner_id) == 1
    assert len(ticket_svc.me_calls) == 2


async def test_channel_keys_and_anonymous_callers_cannot_stream(gateway_env, ticket_svc):
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        created_key = await client.post("/v1/api-keys", json={"name": "mail", "channel": "email"}, headers=admin)
        key = created_key.json()["key"]
        r = await client.get("/v1/stream", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 403
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith("/forbidden")
        assert (await client.get("/v1/stream")).status_code == 401
        bad = await client.get("/v1/stream", headers={**admin, "Last-Event-ID": "abc"})
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


async def test_resume_replays_exactly_the_missed_visible_events_in_order(infra, gateway_env, gateway_db, ticket_svc):
    team_a, team_b = uuid.uuid4(), uuid.uuid4()
    agent_id, agent = user_token("agent")
    ticket_svc.teams[agent_id] = [str(team_a)]
    tid = uuid.uuid4()  # one ticket: one partition, so the broker keeps the order
    first = [created(tid, team=team_a), message(tid, team=team_a, assignee=None, public=True)]
    missed = [
        message(tid, team=team_a, assignee=None, public=False),     # visible
        assigned(tid, team=team_b, assignee=None, previous=None),   # moved to team B: invisible? no: team B only
        message(tid, team=team_b, assignee=None, public=True),      # invisible
        assigned(tid, team=team_b, assignee=agent_id, previous=None),  # visible: assigned to the agent
        message(tid, team=team_b, assignee=agent_id, public=True),  # visible
    ]
    expected_missed = [missed[0], missed[3], missed[4]]
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        async with SseReader(client, "/v1/stream", agent) as s:
            assert (await s.next(10)) == {"retry": "3000"}
            await produce(infra.kafka_bootstrap, gateway_env, *first)
            got = await s.until_event(lambda f: f["json"]["data"].get("message_id") == str(first[1].data.message_id))
            assert [f["event"] for f in got] == ["ticket.created", "ticket.message_added"]
            last_id = got[-1]["id"]
        # disconnected: these happen while the agent is away
        await produce(infra.kafka_bootstrap, gateway_env, *missed)
        await wait_stored(gateway_db, len(first) + len(missed))
        async with SseReader(client, "/v1/stream", {**agent, "Last-Event-ID": last_id}) as s:
            assert (await s.next(10)) == {"retry": "3000"}
            replayed = [await s.next(10) for _ in expected_missed]
            assert [f["event"] for f in replayed] == [e.type for e in expected_missed]
            assert [f["json"]["data"].get("message_id") for f in replayed] == [
                str(e.data.message_id) if hasattr(e.data, "message_id") else None for e in expected_missed]
            assert [int(f["id"]) for f in replayed] == sorted(int(f["id"]) for f in replayed)
            # then live: the next thing is the next visible event, nothing in between
            tail = message(tid, team=team_a, assignee=agent_id, public=True)
            await produce(infra.kafka_bootstrap, gateway_env, tail)
            live = await s.next(30)
            assert live["json"]["data"]["message_id"] == str(tail.data.message_id)
        # the same through ?last_event_id= (the header, when sent, wins)
        async with SseReader(client, f"/v1/stream?last_event_id={last_id}", agent) as s:
            await s.next(10)
            again = [await s.next(10) for _ in range(len(expected_missed) + 1)]
            assert [f["id"] for f in again[:3]] == [f["id"] for f in replayed]
        # an id older than the retention: stream.reset, then from the oldest row kept
        engine = create_async_engine(gateway_db)
        async with engine.begin() as conn:
            oldest_kept = int(await conn.scalar(text(
                "SELECT min(seq) FROM stream_events WHERE seq > :s"), {"s": int(replayed[0]["id"])}))
            await conn.execute(text("DELETE FROM stream_events WHERE seq < :s"), {"s": oldest_kept})
        await engine.dispose()
        async with SseReader(client, "/v1/stream", {**agent, "Last-Event-ID": "1"}) as s:
            await s.next(10)
            reset = await s.next(10)
            assert reset["event"] == "stream.reset" and reset["json"]["reason"] == "expired"
            assert int(reset["id"]) == oldest_kept - 1
            after_reset = await s.next(10)
            assert int(after_reset["id"]) >= oldest_kept


async def test_two_gateway_instances_both_wake_on_notify(infra, gateway_env, gateway_db, ticket_svc):
    _, admin = user_token("admin")
    async with serve(new_gateway()) as (url_1, _), serve(new_gateway()) as (url_2, _), \
            httpx.AsyncClient(timeout=30) as client:
        async with SseReader(client, url_1 + "/v1/stream", admin) as s1, SseReader(client, url_2 + "/v1/stream", admin) as s2:
            await s1.next(10)
            await s2.next(10)
            event = created(uuid.uuid4(), team=uuid.uuid4())
            await produce(infra.kafka_bootstrap, gateway_env, event)
            f1, f2 = await s1.next(45), await s2.next(45)
            assert f1["json"]["ticket_id"] == f2["json"]["ticket_id"] == str(event.data.ticket_id)
            assert f1["id"] == f2["id"]
    assert await stored(gateway_db) == 1  # consumed once (one consumer group), seen by both


def open_streams() -> float:
    return REGISTRY.get_sample_value("gateway_open_streams") or 0.0


async def test_streams_close_cleanly_on_disconnect_and_on_shutdown(gateway_env, ticket_svc):
    from gateway.stream.service import close_streams_on_exit_signals

    _, admin = user_token("admin")
    app = new_gateway()
    before = open_streams()
    async with serve(app) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        hub = app.state.stream_hub
        async with SseReader(client, "/v1/stream", admin) as s:
            await s.next(10)
            assert open_streams() == before + 1 and len(hub.streams) == 1
            keepalive = await s.next(10, skip_comments=False)  # idle: a comment every keep-alive period
            assert keepalive == {"comment": "keep-alive"}
        # the client went away: the server notices without writing anything
        await wait_for(lambda: _async(len(hub.streams) == 0 and open_streams() == before), timeout=10)

        # shutdown: the exit-signal hook closes every stream; the client sees a clean end
        async with SseReader(client, "/v1/stream", admin) as s:
            await s.next(10)
            seen: list[int] = []
            previous = signal.signal(signal.SIGUSR1, lambda signum, _frame: seen.append(signum))
            try:
                with close_streams_on_exit_signals(hub, signals=(signal.SIGUSR1,)):
                    signal.raise_signal(signal.SIGUSR1)
                    frame = await s.next(10)
                    assert frame == {"eof": True}
            finally:
                signal.signal(signal.SIGUSR1, previous)
            assert seen == [signal.SIGUSR1]  # the server's own handler still ran
        await wait_for(lambda: _async(len(hub.streams) == 0), timeout=10)
    assert open_streams() == before


async def _async(value: Any) -> Any:
    return value


async def test_stream_survives_ticket_svc_outage_with_cached_teams(infra, gateway_env, ticket_svc, monkeypatch):
    monkeypatch.setenv("GATEWAY_AGENT_TEAMS_CACHE_TTL_S", "0")  # ask on every wake
    team = uuid.uuid4()
    agent_id, agent = user_token("agent")
    ticket_svc.teams[agent_id] = [str(team)]
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        async with SseReader(client, "/v1/stream", agent) as s:
            await s.next(10)
            ticket_svc.down = True  # now /v1/agents/me answers 503
            event = created(uuid.uuid4(), team=team)
            await produce(infra.kafka_bootstrap, gateway_env, event)
            frame = await s.next(45)
            assert frame["json"]["ticket_id"] == str(event.data.ticket_id)
        assert len(ticket_svc.me_calls) >= 2


async def test_old_events_are_not_stored_and_rows_past_retention_are_pruned(infra, gateway_env, gateway_db, ticket_svc):
    old = created(uuid.uuid4(), team=uuid.uuid4())
    old.time = NOW - timedelta(days=2)  # e.g. a replay from the start of the topic
    fresh = created(uuid.uuid4(), team=uuid.uuid4())
    app = new_gateway()
    async with serve(app) as (_url, _):
        await produce(infra.kafka_bootstrap, gateway_env, old, fresh)
        await wait_stored(gateway_db, 1)
        engine = create_async_engine(gateway_db)
        async with engine.begin() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM inbox")) == 2  # both consumed ...
            assert await conn.scalar(text("SELECT event_id FROM stream_events")) == fresh.id  # ... one kept
            await conn.execute(text("UPDATE stream_events SET created_at = now() - interval '25 hours'"))
            # links past the retention: one whose ticket has a row left stays (an erasure must
            # still find that row), one without goes; so does an erasure older than two retentions
            kept, gone = fresh.data.ticket_id, uuid.uuid4()
            await conn.execute(text(
                "INSERT INTO stream_ticket_customers (ticket_id, customer_id, linked_at) "
                "VALUES (:k, :c, now() - interval '25 hours'), (:g, :c, now() - interval '25 hours')"),
                {"k": kept, "g": gone, "c": uuid.uuid4()})
            await conn.execute(text(
                "INSERT INTO stream_erased_customers (customer_id, erased_at) "
                "VALUES (:a, now() - interval '49 hours'), (:b, now() - interval '25 hours')"),
                {"a": uuid.uuid4(), "b": (recent := uuid.uuid4())})
            await conn.execute(text("UPDATE stream_events SET created_at = now() - interval '23 hours'"))
        assert await app.state.stream_hub.prune_once() == 0
        async with engine.begin() as conn:
            assert (await conn.execute(text("SELECT ticket_id FROM stream_ticket_customers"))).scalars().all() == [kept]
            assert (await conn.execute(text("SELECT customer_id FROM stream_erased_customers"))).scalars().all() == [recent]
            await conn.execute(text("UPDATE stream_events SET created_at = now() - interval '25 hours'"))
        assert await app.state.stream_hub.prune_once() == 1
        async with engine.begin() as conn:  # the ticket's last row went: its link with it
            assert await conn.scalar(text("SELECT count(*) FROM stream_ticket_customers")) == 0
        await engine.dispose()
    assert await stored(gateway_db) == 0


async def test_a_long_absence_replays_the_newest_events_after_a_reset(infra, gateway_env, gateway_db, ticket_svc,
                                                                      monkeypatch):
    monkeypatch.setenv("GATEWAY_STREAM_REPLAY_MAX", "3")
    _, admin = user_token("admin")
    tid = uuid.uuid4()
    batch = [created(tid, team=uuid.uuid4())] + [message(tid, team=None, assignee=None, public=True) for _ in range(5)]
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        await produce(infra.kafka_bootstrap, gateway_env, *batch)
        await wait_stored(gateway_db, len(batch))
        async with SseReader(client, "/v1/stream", {**admin, "Last-Event-ID": "0"}) as s:
            await s.next(10)
            reset = await s.next(10)
            assert reset["event"] == "stream.reset" and reset["json"]["reason"] == "too-many"
            newest = [await s.next(10) for _ in range(3)]
    assert [f["json"]["data"]["message_id"] for f in newest] == [str(e.data.message_id) for e in batch[-3:]]
    assert int(reset["id"]) == int(newest[0]["id"]) - 1 or int(reset["id"]) < int(newest[0]["id"])


def step_events(tid: uuid.UUID, *, team: uuid.UUID, approver: str) -> list[Any]:
    """One approval step's life, then a customer confirmation asked and answered: what a refund
    ticket's process publishes (docs/workflow.md, "Running a process")."""
    step_id, confirm_id = uuid.uuid4(), uuid.uuid4()
    ref = {"ticket_id": tid, "team_id": team, "number": 7}
    return [
        events.TicketStepStarted(source="ticket-svc", subject=str(tid), data=events.TicketStepStartedData(
            **ref, step_id=step_id, step="approval", kind="approval", target_minutes=240, started_at=NOW)),
        events.TicketApprovalRequested(source="ticket-svc", subject=str(tid), data=events.TicketApprovalRequestedData(
            **ref, step_id=step_id, step="approval", kind="approval", approvers=[approver], rule="any",
            requested_at=NOW)),
        events.TicketApprovalDecided(source="ticket-svc", subject=str(tid), data=events.TicketApprovalDecidedData(
            **ref, step_id=step_id, step="approval", kind="approval", decision="approve", decided_by=approver,
            step_status="completed", decided_at=NOW)),
        events.TicketStepCompleted(source="ticket-svc", subject=str(tid), data=events.TicketStepCompletedData(
            **ref, step_id=step_id, step="approval", outcome="approved", completed_at=NOW)),
        events.TicketConfirmationRequested(source="ticket-svc", subject=str(tid), data=events.TicketConfirmationRequestedData(
            ticket_id=tid, number=7, step_id=confirm_id, step="confirm", channel="email",
            recipient=events.Requester(email="a@b.co"), link="https://help.example.com/v1/confirmations/hcf1.secret",
            expires_at=NOW, at=NOW)),
        events.TicketCustomerConfirmed(source="ticket-svc", subject=str(tid), data=events.TicketCustomerConfirmedData(
            **ref, step_id=confirm_id, step="confirm", answer="confirmed", via="link", confirmed_at=NOW)),
    ]


async def test_process_steps_reach_the_team_and_supervisors_but_never_the_confirmation_link(
        infra, gateway_env, gateway_db, ticket_svc):
    team_a, team_b = uuid.uuid4(), uuid.uuid4()
    agent_id, agent = user_token("agent")
    other_id, other = user_token("agent")
    supervisor_id, supervisor = user_token("supervisor")
    ticket_svc.teams[agent_id] = [str(team_a)]
    ticket_svc.teams[other_id] = [str(team_b)]
    tid = uuid.uuid4()  # one ticket: one partition, in order
    batch = step_events(tid, team=team_a, approver=supervisor_id)
    # the marker is another ticket, so another partition: it is produced only once the batch has
    # reached the stream, so the other team's agent would have seen any of it before the marker
    marker = created(uuid.uuid4())  # no team: every agent's triage queue
    is_marker = lambda f: f["json"]["ticket_id"] == str(marker.data.ticket_id)  # noqa: E731
    is_last = lambda f: f["event"] == "ticket.customer_confirmed"  # noqa: E731
    async with serve(new_gateway()) as (url, _), httpx.AsyncClient(base_url=url, timeout=30) as client:
        async with SseReader(client, "/v1/stream", agent) as s_agent, SseReader(client, "/v1/stream", other) as s_other, \
                SseReader(client, "/v1/stream", supervisor) as s_sup:
            for s in (s_agent, s_other, s_sup):
                assert (await s.next(10)) == {"retry": "3000"}
            await produce(infra.kafka_bootstrap, gateway_env, *batch)
            seen_agent = await s_agent.until_event(is_last)
            seen_sup = await s_sup.until_event(is_last)
            await produce(infra.kafka_bootstrap, gateway_env, marker)
            seen_other = (await s_other.until_event(is_marker))[:-1]
    expected = ["ticket.step_started", "ticket.approval_requested", "ticket.approval_decided", "ticket.step_completed",
                "ticket.customer_confirmed"]
    assert [f["event"] for f in seen_agent] == [f["event"] for f in seen_sup] == expected
    assert seen_other == []  # another team's agent sees none of it
    decided = seen_sup[2]["json"]
    assert (decided["team_id"], decided["data"]["decided_by"], decided["data"]["step_status"]) == (
        str(team_a), supervisor_id, "completed")
    # the customer's link is a bearer capability: it was never stored for the stream
    engine = create_async_engine(gateway_db)
    async with engine.connect() as conn:
        kinds = set(await conn.scalars(text("SELECT type FROM stream_events WHERE ticket_id = :t"), {"t": tid}))
        leaked = await conn.scalar(text("SELECT count(*) FROM stream_events WHERE payload::text LIKE '%hcf1.secret%'"))
    await engine.dispose()
    assert kinds == set(expected) and leaked == 0
