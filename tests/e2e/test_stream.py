"""The live stream through the whole stack: an agent sees a ticket routed to their team and the
customer's reply; another agent of another team does not; resuming replays what was missed."""

import asyncio
import json
import uuid

import httpx

from .conftest import eventually


async def read_events(client: httpx.AsyncClient, headers: dict, *, until, seconds: float = 45.0,
                      path: str = "/v1/stream", opened: asyncio.Event | None = None) -> list[dict]:
    """Collect SSE events until ``until(events)`` holds or time runs out (bounded). ``opened`` is
    set once the stream has answered: a stream without Last-Event-ID starts at that moment, so a
    caller that wants an event it is about to cause waits for it before causing the event."""
    events: list[dict] = []

    async def collect() -> None:
        async with client.stream("GET", path, headers=headers, timeout=None) as response:
            assert response.status_code == 200, await response.aread()
            if opened is not None:
                opened.set()
            current: dict = {}
            async for line in response.aiter_lines():
                if line.startswith("id: "):
                    current["id"] = int(line[4:])
                elif line.startswith("event: "):
                    current["event"] = line[7:]
                elif line.startswith("data: "):
                    current["data"] = json.loads(line[6:])
                elif line == "" and current:
                    events.append(current)
                    current = {}
                    if until(events):
                        return

    try:
        await asyncio.wait_for(collect(), seconds)
    except TimeoutError:
        pass
    return events


def mail(msg_id: str, subject: str, body: str, in_reply_to: str | None = None) -> bytes:
    lines = ["From: <stream.customer@example.com>", f"Subject: {subject}", f"Message-ID: <{msg_id}>",
             "Content-Type: text/plain; charset=UTF-8"] + ([f"In-Reply-To: <{in_reply_to}>"] if in_reply_to else [])
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


async def new_agent(gw, admin_headers, name: str) -> tuple[str, dict]:
    """A gateway user with an agent profile in ticket-svc; returns (user id, its auth header)."""
    password = uuid.uuid4().hex
    email = f"{name}@example.com"
    created = await gw.post("/v1/users", json={"email": email, "password": password, "role": "agent", "name": name},
                            headers=admin_headers)
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    profile = await gw.put(f"/v1/agents/{user_id}", json={"display_name": name, "status": "online"},
                           headers=admin_headers)
    assert profile.status_code == 200, profile.text
    login = await gw.post("/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    return user_id, {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_agents_see_their_teams_events_and_resume(gw, admin_headers, email_key_headers):
    suffix = uuid.uuid4().hex[:6]
    cn_id, cn = await new_agent(gw, admin_headers, f"cn-{suffix}")
    en_id, en = await new_agent(gw, admin_headers, f"en-{suffix}")
    team = (await gw.post("/v1/teams", json={"name": f"zh-{suffix}", "members": [cn_id]}, headers=admin_headers)).json()
    assert (await gw.post("/v1/teams", json={"name": f"en-{suffix}", "members": [en_id]},
                          headers=admin_headers)).status_code == 201
    rule = await gw.post("/v1/routing/rules", json={
        "name": f"zh {suffix}", "position": 0,
        "conditions": [{"field": "channel", "op": "eq", "value": "email"},
                       {"field": "subject", "op": "contains", "value": suffix}],
        "actions": {"set_team": team["id"]}}, headers=admin_headers)
    assert rule.status_code == 201, rule.text

    # the agent's stream is open before the ticket exists: a stream without Last-Event-ID starts
    # where the log is when it opens, so one opened after the event (however soon) never shows it
    ticket: dict = {}
    opened = asyncio.Event()
    watching = asyncio.create_task(read_events(
        gw, cn, opened=opened, seconds=90,
        until=lambda evs: "id" in ticket and any(e["data"].get("ticket_id") == ticket["id"] for e in evs)))
    await asyncio.wait_for(opened.wait(), 30)

    headers = {**email_key_headers, "Content-Type": "message/rfc822"}
    first = f"{uuid.uuid4()}@mail.example.com"
    created = await gw.post("/v1/channels/email/inbound", content=mail(first, f"快递丢了 {suffix}", "三天没有物流信息"),
                            headers=headers)
    assert created.status_code == 201, created.text
    ticket_id = ticket["id"] = created.json()["ticket_id"]

    seen = await watching
    assert any(e["data"].get("ticket_id") == ticket_id for e in seen), "the ticket never reached the agent's stream"
    assert any(e["event"] == "ticket.created" and e["data"]["team_id"] == team["id"] for e in seen)
    others = await read_events(gw, en, until=lambda evs: False, seconds=3)
    assert all(e["data"].get("ticket_id") != ticket_id for e in others)
    last_id = max(e["id"] for e in seen)

    reply = mail(f"{uuid.uuid4()}@mail.example.com", f"Re: 快递丢了 {suffix}", "找到了吗？", in_reply_to=first)
    assert (await gw.post("/v1/channels/email/inbound", content=reply, headers=headers)).json()["created"] is False

    async def replayed():
        evs = await read_events(gw, {**cn, "Last-Event-ID": str(last_id)},
                                until=lambda evs: any(e["event"] == "ticket.message_added" for e in evs), seconds=5)
        return [e for e in evs if e["event"] == "ticket.message_added"] or None

    messages = await eventually(replayed, timeout=60)
    assert messages[0]["data"]["data"]["author_kind"] == "customer" and messages[0]["id"] > last_id
    assert (await gw.get("/v1/stream", headers=email_key_headers)).status_code == 403


async def test_an_admins_stream_carries_the_board_and_it_moves_when_a_ticket_comes_in(gw, admin_headers,
                                                                                     email_key_headers):
    """The whole path: intake (ticket-svc) -> tickets.events -> analytics-svc's fold -> the gateway's
    poller -> the admin's stream. Other tests create tickets meanwhile, hence "at least one more";
    and the total rather than today's count, which a local midnight during the test would reset."""

    async def board() -> dict | None:
        """The first board of a new connection: the current one, sent at once."""
        evs = await read_events(gw, admin_headers, path="/v1/stream?tz=Asia/Shanghai",
                                until=lambda evs: any(e["event"] == "kpis" for e in evs), seconds=10)
        return next((e for e in evs if e["event"] == "kpis"), None)

    first = await eventually(board, timeout=60)
    assert "id" not in first and first["data"]["tz"] == "Asia/Shanghai"
    before = first["data"]["tickets_total"]
    created = await gw.post("/v1/channels/email/inbound", content=mail(f"{uuid.uuid4()}@mail.example.com",
                            "发票开错了", "请重开发票"), headers={**email_key_headers, "Content-Type": "message/rfc822"})
    assert created.status_code == 201, created.text

    async def moved() -> dict | None:
        now = await board()
        return now if now is not None and now["data"]["tickets_total"] > before else None

    assert await eventually(moved, timeout=60)
