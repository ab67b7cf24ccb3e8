"""If-Match on customers follows the one rule (issue 9, "Also fix" 8): optional, a list may
match, a stale or unreadable one is a 412 version-conflict with the current version."""

import uuid

from customer_svc.customers import service
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="u1", role="admin"))


async def test_if_match(api, raw):
    async with raw.transaction():
        cid = (await service.resolve_requester(raw, ticket_id=uuid.uuid4(),
                                               requester={"name": "Li", "email": "li@example.com"}))[0]
    url = f"/v1/customers/{cid}"
    assert (await api.get(url, headers=ADMIN)).headers["etag"] == 'W/"1"'
    for stale in ('W/"3"', "garbage", '"4", W/"5"'):
        r = await api.patch(url, json={"name": "Lee"}, headers={**ADMIN, "If-Match": stale})
        assert r.status_code == 412 and r.json()["type"].endswith("/version-conflict"), stale
        assert r.json()["current_version"] == 1
    ok = await api.patch(url, json={"name": "Lee"}, headers={**ADMIN, "If-Match": 'W/"3", W/"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == 'W/"2"'
    assert (await api.patch(url, json={"name": "Li"}, headers=ADMIN)).headers["etag"] == 'W/"3"'
