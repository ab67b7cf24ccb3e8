"""No stored message loads anything from the network (issue 9, "Also fix" 2): the API and the
e-mail channel alike store HTML without remote images; inline (cid:) images stay."""

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

AGENT = Principal(kind="user", id="u-agent", role="agent")
WEB = Principal(kind="channel", id="web-key", channel="web")
MAIL = Principal(kind="channel", id="email-key", channel="email")

PIXEL = '<p>Hi</p><img src="https://t.example/open.gif?r=7" alt="" width="1" height="1">'


async def test_api_messages_lose_remote_images(client):
    ticket = (await client.post("/v1/tickets", json={"subject": "s", "requester": {"email": "a@example.com"}},
                                headers=identity_headers(WEB))).json()
    posted = await client.post(f"/v1/tickets/{ticket['id']}/messages", json={"body": "Hi", "html": PIXEL},
                               headers=identity_headers(WEB))
    assert posted.status_code == 201, posted.text
    assert "t.example" not in posted.json()["body_html"] and "<p>Hi</p>" in posted.json()["body_html"]
    read = (await client.get(f"/v1/tickets/{ticket['id']}/messages", headers=identity_headers(AGENT))).json()
    assert all("t.example" not in (m["body_html"] or "") for m in read["items"])


async def test_html_mail_keeps_inline_images_only(client):
    html = ('<div>Screenshot:</div><img src="cid:shot@mail.example" alt="shot">'
            '<img src="http://t.example/track.png" alt="tracker">'
            '<table background="https://t.example/bg.png"><tr><td style="background:url(https://t.example/c.png)">x'
            '</td></tr></table>')
    raw = ("From: Buyer <buyer@example.com>\r\nTo: support@example.com\r\nSubject: screenshot\r\n"
           "Message-ID: <pixel-1@mail.example.com>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/html; charset=UTF-8\r\n\r\n" + html + "\r\n").encode()
    r = await client.post("/v1/channels/email/inbound", content=raw,
                          headers={**identity_headers(MAIL), "Content-Type": "message/rfc822"})
    assert r.status_code == 201, r.text
    messages = (await client.get(f"/v1/tickets/{r.json()['ticket_id']}/messages",
                                 headers=identity_headers(AGENT))).json()["items"]
    stored = messages[0]["body_html"]
    assert 'src="cid:shot@mail.example"' in stored and 'alt="tracker"' in stored
    assert "t.example" not in stored
