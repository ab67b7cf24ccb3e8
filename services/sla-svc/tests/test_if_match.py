"""If-Match on SLA policies and calendars follows the one rule (issue 9, "Also fix" 8): optional,
a list of ETags may match, a stale or unreadable one is a 412 version-conflict problem with the
current version, and DELETE honours it too."""

from __future__ import annotations

import pytest

from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="admin", role="admin"))
POLICY = {"name": "p", "targets": {"first_response": {"minutes": 10}}}
CALENDAR = {"name": "c", "timezone": "UTC"}


def conflict(r, current: int) -> bool:
    return (r.status_code == 412 and r.headers["content-type"] == "application/problem+json"
            and r.json()["type"].endswith("/version-conflict") and r.json()["current_version"] == current)


@pytest.mark.parametrize(("path", "body"), [("/v1/sla/policies", POLICY), ("/v1/sla/calendars", CALENDAR)])
async def test_put(api, path, body):
    created = await api.post(path, json=body, headers=ADMIN)
    assert created.status_code == 201 and created.headers["etag"] == 'W/"1"'
    url = f"{path}/{created.json()['id']}"
    assert (await api.get(url, headers=ADMIN)).headers["etag"] == 'W/"1"'
    for stale in ('W/"7"', "garbage", 'W/"7", "8"'):
        assert conflict(await api.put(url, json=body, headers={**ADMIN, "If-Match": stale}), 1), stale
    ok = await api.put(url, json=body, headers={**ADMIN, "If-Match": 'W/"7", W/"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == 'W/"2"'
    assert (await api.put(url, json=body, headers={**ADMIN, "If-Match": "*"})).headers["etag"] == 'W/"3"'
    assert (await api.put(url, json=body, headers=ADMIN)).headers["etag"] == 'W/"4"'  # optional
    assert conflict(await api.put(url, json=body, headers={**ADMIN, "If-Match": 'W/"1"'}), 4)


async def test_delete_policy(api):
    created = (await api.post("/v1/sla/policies", json=POLICY, headers=ADMIN)).json()
    url = f"/v1/sla/policies/{created['id']}"
    assert conflict(await api.delete(url, headers={**ADMIN, "If-Match": 'W/"2"'}), 1)
    assert (await api.get(url, headers=ADMIN)).status_code == 200
    assert (await api.delete(url, headers={**ADMIN, "If-Match": 'W/"1"'})).status_code == 204
    assert (await api.delete(url, headers={**ADMIN, "If-Match": 'W/"1"'})).status_code == 404
