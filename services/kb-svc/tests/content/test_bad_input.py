"""Bad input as a user would send it: each gets a clear 4xx problem and nothing is half-written."""

import uuid

import pytest
from sqlalchemy import text

from helpdesk_common.html_sanitize import MAX_HTML


@pytest.fixture
async def section(api, headers):
    c = (await api.post("/v1/kb/categories", json={"name": "Help", "locale": "en"}, headers=headers["editor"])).json()
    return (await api.post("/v1/kb/sections", json={"category_id": c["id"], "name": "FAQ", "locale": "en"},
                           headers=headers["editor"])).json()


def _article(section, **changes):
    body = {"section_id": section["id"], "locale": "en", "title": "Refund policy and timelines",
            "body_html": "<p>x</p>", "labels": ["refund"], "visibility": "public"}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


@pytest.mark.parametrize("changes", [
    {"extra": 1},                                   # unknown field
    {"title": "a\x00b"},                            # NUL
    {"body_html": "<p>\x00</p>"},
    {"title": "   "},                               # blank
    {"title": "t" * 501},
    {"title": ...},                                 # missing
    {"body_html": "x" * (MAX_HTML + 1)},            # huge
    {"locale": "not a tag"}, {"locale": "中文"}, {"locale": ""}, {"locale": 7},
    {"visibility": "everyone"},
    {"labels": "refund"}, {"labels": [""]}, {"labels": ["x" * 101]}, {"labels": [str(n) for n in range(51)]},
    {"section_id": "not-a-uuid"}, {"section_id": str(uuid.uuid4())},  # unknown section: 422 naming it
    {"review_at": "tomorrow"}, {"review_at": 1700000000},
    {"owner_id": ""},
])
async def test_bad_articles_are_422_and_write_nothing(api, headers, db, section, changes):
    r = await api.post("/v1/kb/articles", json=_article(section, **changes), headers=headers["editor"])
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json" and r.json()["errors"]
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM kb_articles")) == 0
        assert await conn.scalar(text("SELECT count(*) FROM kb_article_versions")) == 0


@pytest.mark.parametrize(("body", "status"), [
    (b"{not json", 400), (b'{"name": "x", "locale": "en"', 400),  # not JSON at all
    (b"[]", 422), (b"null", 422),  # JSON, not the object the route takes
])
async def test_malformed_json(api, headers, body, status):
    r = await api.post("/v1/kb/categories", content=body,
                       headers={**headers["editor"], "Content-Type": "application/json"})
    assert r.status_code == status and r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("body", [
    {"name": "x", "locale": "en", "position": 2**63}, {"name": "x", "locale": "en", "position": -1},
    {"name": "x", "locale": "en", "position": "1"}, {"name": "x"}, {"name": "x", "locale": "en", "colour": "red"},
])
async def test_bad_categories(api, headers, body):
    assert (await api.post("/v1/kb/categories", json=body, headers=headers["editor"])).status_code == 422


async def test_bad_paths_and_queries(api, headers, section):
    article = (await api.post("/v1/kb/articles", json=_article(section), headers=headers["editor"])).json()
    aid = article["id"]
    assert (await api.get("/v1/kb/articles/12", headers=headers["agent"])).status_code == 422
    assert (await api.get(f"/v1/kb/articles/{aid}/versions/{2**63}", headers=headers["agent"])).status_code == 422
    assert (await api.get(f"/v1/kb/articles/{aid}/versions/0", headers=headers["agent"])).status_code == 422
    assert (await api.get(f"/v1/kb/articles/{aid}/versions?cursor=%00", headers=headers["agent"])).status_code in (
        400, 422)
    assert (await api.get(f"/v1/kb/articles/{aid}/versions?cursor=WzBd", headers=headers["agent"])).status_code == 400
    assert (await api.get("/v1/kb/categories?cursor=WyJ4IiwieSJd", headers=headers["agent"])).status_code == 400
    assert (await api.get("/v1/kb/articles?colour=red", headers=headers["agent"])).status_code in (400, 422)
    bad_locale = await api.put(f"/v1/kb/articles/{aid}/translations/not%20a%20tag", json={"title": "t"},
                               headers={**headers["editor"], "If-Match": 'W/"1"'})
    assert bad_locale.status_code == 422
    unknown = await api.post(f"/v1/kb/articles/{aid}/publish", json={"locale": "de"}, headers=headers["editor"])
    assert unknown.status_code == 404
    assert (await api.post(f"/v1/kb/articles/{uuid.uuid4()}/publish", json={"locale": "en"},
                           headers=headers["editor"])).status_code == 404
    assert (await api.post(f"/v1/kb/articles/{aid}/publish", json={"locale": "en", "x": 1},
                           headers=headers["editor"])).status_code == 422
    for patch in ({"visibility": None}, {"labels": None}, {"section_id": None}, {"state": "archived"}):
        assert (await api.patch(f"/v1/kb/articles/{aid}", json=patch,
                                headers={**headers["editor"], "If-Match": 'W/"1"'})).status_code == 422, patch
    cleared = await api.patch(f"/v1/kb/articles/{aid}", json={"review_at": None},
                              headers={**headers["editor"], "If-Match": 'W/"1"'})
    assert cleared.status_code == 200 and cleared.json()["review_at"] is None
    assert (await api.patch(f"/v1/kb/categories/{section['category_id']}", json={"name": None},
                            headers=headers["editor"])).status_code == 422


async def test_locales_are_stored_in_canonical_case(api, headers, section):
    r = await api.post("/v1/kb/articles", json=_article(section, locale="zh_cn", title="退款政策"),
                       headers=headers["editor"])
    assert r.status_code == 201 and r.json()["translations"][0]["locale"] == "zh-CN"
    same = await api.put(f"/v1/kb/articles/{r.json()['id']}/translations/ZH-cn", json={"title": "退款政策（修订）"},
                         headers={**headers["editor"], "If-Match": r.headers["etag"]})
    assert same.status_code == 200 and [t["locale"] for t in same.json()["translations"]] == ["zh-CN"]
    other = await api.put(f"/v1/kb/articles/{r.json()['id']}/translations/zh-Hant-TW", json={"title": "退款政策"},
                          headers={**headers["editor"], "If-Match": same.headers["etag"]})
    assert other.status_code == 201
    assert [t["locale"] for t in other.json()["translations"]] == ["zh-CN", "zh-Hant-TW"]


async def test_labels_are_trimmed_folded_and_deduplicated(api, headers, section):
    r = await api.post("/v1/kb/articles", json=_article(section, labels=[" 退款 ", "Billing", "billing", "ＶＩＰ"]),
                       headers=headers["editor"])
    assert r.json()["labels"] == ["退款", "Billing", "VIP"]
