"""Closing the loop end to end (issue 11, Done when): a customer's e-mail opens a ticket through the
gateway, an agent solves it, customer-svc's survey goes out through notify-svc as a real e-mail
(aiosmtpd on 127.0.0.1, conftest.smtp_sink) carrying a full link under PUBLIC_BASE_URL (the
gateway), a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright) opens the
link, picks a score, writes a comment and submits the page's form; the thank-you page shows, the
ticket shows the CSAT, exactly one follow-up task opens, and answering the link again (JSON) is a
409 that changes nothing. The NPS scenario does the same with a detractor's 3."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import shutil
import tempfile
import uuid

import pytest

from .conftest import eventually
from .test_outbound_email import customer_mail
from .test_ticket_access import new_agent

pytestmark = pytest.mark.timeout(300)

CHROMIUM = "/usr/bin/chromium"
#: the flags this machine's Chromium needs (/work/.library/env/machines/polyglot.md): no sandbox as
#: root, and none of its background connections, which the closed network refuses
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-proxy-server"]
LINK = re.compile(r"https?://[^\s<>\"]+/v1/surveys/[^\s<>\"]+")
CSAT_SUBJECTS = ("How did we do?", "您对本次服务满意吗？")
NPS_SUBJECTS = ("How likely are you to recommend us?", "您向朋友推荐我们的可能性有多大？")
THANKS = ("Thank you for your feedback.", "感谢您的反馈！")


@pytest.fixture
async def survey_settings(gw, admin_headers):
    """Set the survey settings (admins, If-Match), and put the ones found back afterwards: the
    stack is shared by the session's other tests."""
    found = await gw.get("/v1/surveys/settings", headers=admin_headers)
    assert found.status_code == 200, found.text
    fields = ("csat_enabled", "csat_delay_minutes", "nps_enabled", "nps_interval_days")
    original = {k: found.json()[k] for k in fields}

    async def put(**values):
        current = await gw.get("/v1/surveys/settings", headers=admin_headers)
        body = {**{k: current.json()[k] for k in fields}, **values}
        answer = await gw.put("/v1/surveys/settings", json=body,
                              headers={**admin_headers, "If-Match": current.headers["etag"]})
        assert answer.status_code == 200, answer.text
        return answer.json()

    yield put
    await put(**original)


def _surveys_to(sink, address: str, subjects: tuple[str, ...]) -> list[email.message.EmailMessage]:
    mails = [email.message_from_bytes(raw, policy=email.policy.default)
             for rcpts, raw in list(sink.messages) if address in rcpts]
    return [m for m in mails if any(s in str(m["Subject"]) for s in subjects)]


async def _one_survey_mail(sink, address: str, subjects: tuple[str, ...]) -> email.message.EmailMessage:
    async def arrived():
        return _surveys_to(sink, address, subjects) or None

    [mail] = await eventually(arrived, timeout=90)
    return mail


def _link_of(mail: email.message.EmailMessage, gateway_url: str) -> str:
    text = mail.get_body(("plain",)).get_content()
    links = LINK.findall(text)
    assert len(set(links)) == 1, text
    link = links[0]
    assert link.startswith(f"{gateway_url}/v1/surveys/"), (link, gateway_url)
    html = mail.get_body(("html",)).get_content()
    assert f'href="{link.replace("&", "&amp;")}"' in html
    return link


async def _answer_in_browser(link: str, *, field: str, value: int, comment: str) -> tuple[str, str]:
    """Open the link in headless Chromium, choose ``field`` = ``value``, write the comment, submit.
    (the form page's heading, the page shown after the submit)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (apt-get install -y chromium)")
    from playwright.async_api import async_playwright

    profile = tempfile.mkdtemp(prefix="survey-chromium-")
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000)
            try:
                page = await browser.new_page()
                page.set_default_timeout(30_000)
                opened = await page.goto(link)
                assert opened is not None and opened.status == 200, opened and opened.status
                heading = await page.locator("h1").inner_text()
                await page.check(f'input[name="{field}"][value="{value}"]')
                await page.fill('textarea[name="comment"]', comment)
                async with page.expect_navigation():
                    await page.click('button[type="submit"]')
                return heading, await page.locator("h1").inner_text()
            finally:
                await browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


async def _solved_email_ticket(gw, admin_headers, email_key_headers, *, sender: str, subject: str,
                               body: str) -> dict:
    """A ticket opened by the customer's e-mail, with its customer linked, solved by an agent."""
    opened = await gw.post("/v1/channels/email/inbound", content=customer_mail(
        f"{uuid.uuid4()}@mail.example.com", sender, subject=subject, body=body),
        headers={**email_key_headers, "Content-Type": "message/rfc822"})
    assert opened.status_code == 201, opened.text
    ticket_id = opened.json()["ticket_id"]

    async def linked():
        found = (await gw.get(f"/v1/tickets/{ticket_id}", headers=admin_headers)).json()
        return found if found.get("customer_id") else None

    await eventually(linked, timeout=60)
    agent_id, agent = await new_agent(gw, admin_headers, f"survey-agent-{uuid.uuid4().hex[:6]}")
    assigned = await gw.patch(f"/v1/tickets/{ticket_id}", json={"assignee_id": agent_id}, headers=admin_headers)
    assert assigned.status_code == 200, assigned.text
    replied = await gw.post(f"/v1/tickets/{ticket_id}/messages", json={"body": "已为您处理好 / all fixed"},
                            headers=agent)
    assert replied.status_code == 201, replied.text
    solved = await gw.patch(f"/v1/tickets/{ticket_id}", json={"status": "solved"}, headers=agent)
    assert solved.status_code == 200, solved.text
    return solved.json()


async def _follow_ups(gw, admin_headers, customer_id: str) -> list[dict]:
    answer = await gw.get("/v1/tickets", params={"type": "follow_up", "customer_id": customer_id, "limit": 100},
                          headers=admin_headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


async def _exactly_one_follow_up(gw, admin_headers, customer_id: str) -> dict:
    async def opened():
        return await _follow_ups(gw, admin_headers, customer_id) or None

    found = await eventually(opened, timeout=60)
    await asyncio.sleep(3)  # a second one (a redelivered answer, a second claim) would have come by now
    again = await _follow_ups(gw, admin_headers, customer_id)
    assert len(found) == 1 and [f["id"] for f in again] == [found[0]["id"]], again
    return again[0]


async def test_a_bad_csat_answered_in_a_browser_opens_one_follow_up(
        gw, stack, smtp_sink, admin_headers, email_key_headers, survey_settings):
    await survey_settings(csat_enabled=True, csat_delay_minutes=0, nps_enabled=False)
    sender = f"csat.{uuid.uuid4().hex[:8]}@example.com"
    ticket = await _solved_email_ticket(gw, admin_headers, email_key_headers, sender=sender,
                                        subject="=?UTF-8?B?5omT5Y2w5py65Z2P5LqG?=", body="打印机坏了，无法打印。")
    ticket_id, number = ticket["id"], ticket["number"]

    mail = await _one_survey_mail(smtp_sink, sender, CSAT_SUBJECTS)
    assert f"[#{number}]" in str(mail["Subject"]) and mail["Auto-Submitted"] == "auto-generated"
    link = _link_of(mail, stack.creds["gateway_url"])

    comment = "回复太慢了，等了三天 / far too slow"
    heading, after = await _answer_in_browser(link, field="rating", value=1, comment=comment)
    assert heading in ("How satisfied are you with how we handled your request?", "您对本次服务满意吗？")
    assert after in THANKS

    async def shown():
        found = (await gw.get(f"/v1/tickets/{ticket_id}", headers=admin_headers)).json()
        return found["csat"]

    csat = await eventually(shown, timeout=60)
    assert csat["rating"] == 1 and csat["comment"] == comment and csat["answered_at"]

    follow_up = await _exactly_one_follow_up(gw, admin_headers, ticket["customer_id"])
    assert follow_up["follow_up_of"] == ticket_id
    if ticket["team_id"]:  # else routing rules (of other tests, too) place it
        assert follow_up["team_id"] == ticket["team_id"]
    assert follow_up["priority"] == "high" and f"#{number}" in follow_up["subject"]

    # the link again, as an API client: the answer stands, nothing moves
    again = await gw.post(link.removeprefix(stack.creds["gateway_url"]), json={"rating": 5, "comment": "changed"})
    assert again.status_code == 409, again.text
    assert again.headers["content-type"].startswith("application/problem+json")
    await asyncio.sleep(2)
    assert (await gw.get(f"/v1/tickets/{ticket_id}", headers=admin_headers)).json()["csat"] == csat
    assert len(await _follow_ups(gw, admin_headers, ticket["customer_id"])) == 1

    deliveries = (await gw.get("/v1/deliveries", params={"kind": "survey", "ticket_id": ticket_id},
                                 headers=admin_headers)).json()["items"]
    assert [(d["channel"], d["status"]) for d in deliveries] == [("email", "sent")]
    assert len(_surveys_to(smtp_sink, sender, CSAT_SUBJECTS)) == 1


async def test_an_nps_detractor_answered_in_a_browser_opens_one_follow_up(
        gw, stack, smtp_sink, admin_headers, email_key_headers, survey_settings):
    await survey_settings(csat_enabled=False, nps_enabled=True, nps_interval_days=90)
    sender = f"nps.{uuid.uuid4().hex[:8]}@example.com"
    ticket = await _solved_email_ticket(gw, admin_headers, email_key_headers, sender=sender,
                                        subject="Invoice missing", body="I still have no invoice for order B-12.")

    mail = await _one_survey_mail(smtp_sink, sender, NPS_SUBJECTS)
    assert "0-10" in mail.get_body(("plain",)).get_content()
    link = _link_of(mail, stack.creds["gateway_url"])

    heading, after = await _answer_in_browser(link, field="score", value=3, comment="Would not recommend, sorry")
    assert heading in ("How likely are you to recommend us to a friend or colleague?", "您向朋友或同事推荐我们的可能性有多大？")
    assert after in THANKS

    follow_up = await _exactly_one_follow_up(gw, admin_headers, ticket["customer_id"])
    assert follow_up["subject"].startswith(("Follow-up: NPS 3/10", "NPS 回访：推荐意愿 3/10"))
    assert follow_up["follow_up_of"] == ticket["id"]  # the ticket whose resolution triggered the survey
    # an NPS answer is not the ticket's CSAT
    assert (await gw.get(f"/v1/tickets/{ticket['id']}", headers=admin_headers)).json()["csat"] is None
    again = await gw.post(link.removeprefix(stack.creds["gateway_url"]), json={"score": 10})
    assert again.status_code == 409, again.text
    assert not _surveys_to(smtp_sink, sender, CSAT_SUBJECTS)  # CSAT was off
