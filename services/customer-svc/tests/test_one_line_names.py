"""A customer's name is one clean line (issue 9, "Also fix" 1): it becomes the display name of
the To: header of every mail to the customer, so a CR/LF would be a header injection."""

import uuid

import pytest

from customer_svc.customers import service
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers

ADMIN = identity_headers(Principal(kind="user", id="u1", role="admin"))


async def seed(raw) -> uuid.UUID:
    async with raw.transaction():
        return (await service.resolve_requester(raw, ticket_id=uuid.uuid4(),
                                                requester={"name": "Wang", "email": "w@example.com"}))[0]


async def test_name_is_cleaned(api, raw):
    cid = await seed(raw)
    r = await api.patch(f"/v1/customers/{cid}", json={"name": "Wang\r\nBcc: x@example.com\u202e"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Wang Bcc: x@example.com"


@pytest.mark.parametrize("name", ["\r\n", "\u202e\u2066", "\t \x85"])
async def test_a_name_with_nothing_visible_is_422(api, raw, name):
    cid = await seed(raw)
    r = await api.patch(f"/v1/customers/{cid}", json={"name": name}, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["body.name"]
