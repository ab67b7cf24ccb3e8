"""Attachments and images of an article: the ticket attachment rules (size, count, executables),
types from the bytes, safe download headers, public only with a readable published article."""

import pytest

from helpdesk_common.attachments import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
SVG = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'><script>alert(2)</script></svg>"


async def _article(api, headers, visibility="public"):
    c = (await api.post("/v1/kb/categories", json={"name": "Help", "locale": "en"}, headers=headers["editor"])).json()
    s = (await api.post("/v1/kb/sections", json={"category_id": c["id"], "name": "Billing", "locale": "en"},
                        headers=headers["editor"])).json()
    return (await api.post("/v1/kb/articles", json={"section_id": s["id"], "locale": "en", "title": "Invoices",
                                                   "visibility": visibility}, headers=headers["editor"])).json()


async def _upload(api, headers, article_id, content, filename, content_type="application/octet-stream", who="editor"):
    return await api.post(f"/v1/kb/articles/{article_id}/attachments", params={"filename": filename},
                          content=content, headers={**headers[who], "Content-Type": content_type})


async def test_an_image_in_a_published_public_article(api, headers):
    article = await _article(api, headers)
    up = await _upload(api, headers, article["id"], PNG, "截图.png", "image/png")
    assert up.status_code == 201, up.text
    image = up.json()
    assert (image["content_type"], image["size"], image["filename"]) == ("image/png", len(PNG), "截图.png")
    url = image["url"]
    assert url == f"/v1/kb/public/articles/{article['id']}/attachments/{image['id']}"
    # the body may show it; script around it goes
    current = await api.get(f"/v1/kb/articles/{article['id']}", headers=headers["editor"])
    html = f'<p>See <img src="{url}" alt="the invoice screen" onerror="alert(1)"></p><script>x()</script>'
    saved = await api.put(f"/v1/kb/articles/{article['id']}/translations/en", json={"title": "Invoices",
                                                                                 "body_html": html},
                          headers={**headers["editor"], "If-Match": current.headers["etag"]})
    draft = saved.json()["translations"][0]["draft_body_html"]
    assert draft == f'<p>See <img src="{url}" alt="the invoice screen"></p>'

    assert (await api.get(url)).status_code == 404  # not published yet
    await api.post(f"/v1/kb/articles/{article['id']}/publish", json={"locale": "en"}, headers=headers["editor"])
    served = await api.get(url)
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["content-type"] == "image/png"
    assert served.headers["content-disposition"].startswith("inline;")
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in served.headers["content-security-policy"]
    assert served.headers["cache-control"] == "public, max-age=300"
    # help-center pages on other sites may embed a public image; everything else is same-origin
    assert served.headers["cross-origin-resource-policy"] == "cross-origin"
    assert (await api.get(url, headers={"If-None-Match": served.headers["etag"]})).status_code == 304

    listed = await api.get(f"/v1/kb/articles/{article['id']}/attachments", headers=headers["agent"])
    assert [a["id"] for a in listed.json()["items"]] == [image["id"]]
    assert (await api.delete(f"/v1/kb/articles/{article['id']}/attachments/{image['id']}",
                             headers=headers["agent"])).status_code == 403
    assert (await api.delete(f"/v1/kb/articles/{article['id']}/attachments/{image['id']}",
                             headers=headers["editor"])).status_code == 204
    assert (await api.get(url)).status_code == 404


async def test_agents_only_files_stay_with_staff(api, headers):
    article = await _article(api, headers, visibility="agents")
    await api.post(f"/v1/kb/articles/{article['id']}/publish", json={"locale": "en"}, headers=headers["editor"])
    up = (await _upload(api, headers, article["id"], b"%PDF-1.7 internal", "runbook.pdf", "application/pdf")).json()
    assert (await api.get(up["url"])).status_code == 404
    staff = await api.get(f"/v1/kb/articles/{article['id']}/attachments/{up['id']}", headers=headers["agent"])
    assert staff.status_code == 200 and staff.content == b"%PDF-1.7 internal"
    assert staff.headers["content-type"] == "application/octet-stream"
    assert staff.headers["content-disposition"] == "attachment; filename=\"runbook.pdf\"; filename*=UTF-8''runbook.pdf"
    assert staff.headers["x-attachment-content-type"] == "application/pdf"
    assert staff.headers["cache-control"] == "private, no-cache"
    assert staff.headers["cross-origin-resource-policy"] == "same-origin"


async def test_a_file_that_claims_to_be_an_image_is_only_ever_a_download(api, headers):
    article = await _article(api, headers)
    await api.post(f"/v1/kb/articles/{article['id']}/publish", json={"locale": "en"}, headers=headers["editor"])
    for content, name, declared in ((SVG, "logo.svg", "image/svg+xml"), (b"<html><script>1</script>", "a.png",
                                                                         "image/png")):
        up = await _upload(api, headers, article["id"], content, name, declared)
        assert up.status_code == 201 and up.json()["content_type"] == "application/octet-stream"
        served = await api.get(up.json()["url"])
        assert served.headers["content-type"] == "application/octet-stream"
        assert served.headers["content-disposition"].startswith("attachment;")


@pytest.mark.parametrize(("name", "declared"), [("setup.exe", "application/octet-stream"),
                                                ("run.sh", "text/plain"), ("x.txt", "application/javascript")])
async def test_executables_are_refused(api, headers, name, declared):
    article = await _article(api, headers)
    r = await _upload(api, headers, article["id"], b"MZ\x90\x00", name, declared)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"


async def test_a_file_larger_than_an_ordinary_request_body(api, headers):
    article = await _article(api, headers)
    big = PNG + b"\x00" * (3 * 1024 * 1024)  # beyond MAX_BODY_BYTES (1 MiB), within the attachment limit
    up = await _upload(api, headers, article["id"], big, "diagram.png", "image/png")
    assert up.status_code == 201, up.text
    assert up.json()["size"] == len(big)
    # the larger limit is the uploads' only: a JSON body of that size elsewhere is still refused
    huge = await api.post("/v1/kb/categories", content=b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}',
                          headers={**headers["editor"], "Content-Type": "application/json"})
    assert huge.status_code == 413


async def test_limits(api, headers):
    article = await _article(api, headers)
    assert (await _upload(api, headers, article["id"], b"", "empty.txt")).status_code == 422
    too_big = await _upload(api, headers, article["id"], b"x" * (MAX_ATTACHMENT_BYTES + 1), "big.bin")
    assert too_big.status_code == 413
    for n in range(MAX_ATTACHMENTS):
        assert (await _upload(api, headers, article["id"], b"x", f"{n}.txt", "text/plain")).status_code == 201
    assert (await _upload(api, headers, article["id"], b"x", "one-more.txt", "text/plain")).status_code == 409
    assert (await _upload(api, headers, article["id"], b"x", "a.txt", "text/plain", who="agent")).status_code == 403
    missing = await api.post(f"/v1/kb/articles/{article['id']}/attachments", content=b"x", headers=headers["editor"])
    assert missing.status_code == 422
