"""GET /v1/export/tickets.csv and .xlsx: the list's filters and visibility, formula-safe cells,
Chinese text intact, the workbook's row limit."""

import csv
import io

import pytest
from openpyxl import load_workbook

from helpdesk_common.exports import UTF8_BOM
from helpdesk_common.identity import Principal
from helpdesk_common.testing import identity_headers, running_app, service_env
from ticket_svc.exports.columns import COLUMNS

ADMIN = identity_headers(Principal(kind="user", id="root", role="admin"))
SUPERVISOR = identity_headers(Principal(kind="user", id="boss", role="supervisor"))
CHANNEL = identity_headers(Principal(kind="channel", id="key-1", channel="web"))
AGENT = Principal(kind="user", id="a1", role="agent", name="Agent A1")

#: what a customer may type that a spreadsheet would run
DANGEROUS = ["=HYPERLINK(\"http://evil.example\",\"点我\")", "+1+2", "-2+3", "@SUM(A1:A2)", "\tTAB", "\rCR=1"]


async def create(client, subject: str, *, tags=(), priority="normal") -> dict:
    r = await client.post("/v1/tickets", json={"subject": subject, "requester": {"email": "dl@example.com",
                                                                                 "name": "张三"},
                                               "tags": list(tags), "priority": priority}, headers=CHANNEL)
    assert r.status_code == 201, r.text
    return r.json()


def read_csv(response) -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(UTF8_BOM)
    text = response.content[len(UTF8_BOM):].decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == COLUMNS
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def read_xlsx(response) -> list[dict]:
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = [[cell for cell in row] for row in sheet.iter_rows()]
    assert tuple(c.value for c in rows[0]) == COLUMNS
    return [{name: cell for name, cell in zip(COLUMNS, row, strict=True)} for row in rows[1:]]


def disposition_of(response, extension: str) -> str:
    value = response.headers["content-disposition"]
    assert value.startswith('attachment; filename="tickets-') and f'.{extension}"' in value
    assert response.headers["x-content-type-options"] == "nosniff"
    return value


async def test_csv_cells_that_look_like_formulas_are_escaped(client):
    for text in DANGEROUS:
        await create(client, text, tags=["=cmd|' /C calc'!A0", "普通"])
    r = await client.get("/v1/export/tickets.csv", headers=ADMIN)
    disposition_of(r, "csv")
    rows = read_csv(r)
    subjects = sorted(row["subject"] for row in rows)
    # subjects are one-line text (their controls became spaces and were trimmed), so what
    # reaches the file is what the API shows, escaped where it starts like a formula
    api = sorted((await client.get("/v1/tickets?limit=100", headers=ADMIN)).json()["items"], key=lambda t: t["subject"])
    for row_subject, ticket in zip(subjects, api, strict=True):
        shown = ticket["subject"]
        assert row_subject == ("'" + shown if shown[:1] in "=+-@\t\r" else shown)
        assert not row_subject.startswith(("=", "+", "-", "@", "\t", "\r"))
    # a list cell is escaped where it starts (only a cell's first character makes a formula)
    assert {row["tags"] for row in rows} == {"'=cmd|' /C calc'!A0;普通"}
    assert {row["requester_name"] for row in rows} == {"张三"}


async def test_xlsx_cells_are_text_and_escaped(client):
    for text in DANGEROUS:
        await create(client, text, tags=["=1+1"])
    r = await client.get("/v1/export/tickets.xlsx", headers=ADMIN)
    assert r.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    disposition_of(r, "xlsx")
    rows = read_xlsx(r)
    assert len(rows) == len(DANGEROUS)
    for row in rows:
        for name in ("subject", "tags", "requester_email", "status"):
            cell = row[name]
            assert cell.data_type == "s", (name, cell.value)
            assert not str(cell.value).startswith(("=", "+", "-", "@", "\t", "\r")), (name, cell.value)
        assert row["tags"].value == "'=1+1"
        assert row["number"].data_type == "n"  # numbers stay numbers
    assert any(row["subject"].value.startswith("'=HYPERLINK(") for row in rows)


async def test_chinese_subjects_round_trip_in_both_formats(client):
    subject = "退款申请：订单 #12345 未到账，请尽快处理 🙏"
    ticket = await create(client, subject, tags=["退款", "加急"])
    rows = read_csv(await client.get("/v1/export/tickets.csv", headers=ADMIN))
    assert [(r["id"], r["subject"], r["tags"], r["requester_name"]) for r in rows] == \
        [(ticket["id"], subject, "退款;加急", "张三")]
    workbook = read_xlsx(await client.get("/v1/export/tickets.xlsx", headers=ADMIN))
    assert [(r["subject"].value, r["tags"].value) for r in workbook] == [(subject, "退款;加急")]


async def test_downloads_take_the_list_filters_and_its_visibility(client, known_users):
    urgent = await create(client, "urgent one", tags=["vip"], priority="urgent")
    await create(client, "normal one", tags=["vip"])
    await create(client, "other", priority="urgent")
    for path in ("/v1/export/tickets.csv", "/v1/export/tickets.xlsx"):
        r = await client.get(path, params={"priority": "urgent", "tag": "vip"}, headers=SUPERVISOR)
        rows = read_csv(r) if path.endswith("csv") else read_xlsx(r)
        ids = [row["id"] if path.endswith("csv") else row["id"].value for row in rows]
        assert ids == [urgent["id"]]
    # the same parameter checks as the list
    for params in ({"status": "nonsense"}, {"priority": "high", "stauts": "open"}, {"created_after": "yesterday"}):
        for path in ("/v1/export/tickets.csv", "/v1/export/tickets.xlsx"):
            r = await client.get(path, params=params, headers=ADMIN)
            assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
    # an agent in no team sees the triage queue only; a team's ticket stays out of their file
    await known_users(AGENT.id)
    team = await client.post("/v1/teams", json={"name": "Elsewhere", "strategy": "manual"}, headers=ADMIN)
    assert team.status_code == 201, team.text
    r = await client.patch(f"/v1/tickets/{urgent['id']}", json={"team_id": team.json()["id"]}, headers=SUPERVISOR)
    assert r.status_code == 200
    agent_rows = read_csv(await client.get("/v1/export/tickets.csv", headers=identity_headers(AGENT)))
    assert urgent["id"] not in {row["id"] for row in agent_rows} and len(agent_rows) == 2
    for path in ("/v1/export/tickets.csv", "/v1/export/tickets.xlsx"):
        assert (await client.get(path, headers=CHANNEL)).status_code == 403
        assert (await client.get(path)).status_code == 401


async def test_csv_streams_more_rows_than_one_batch(client, monkeypatch):
    from ticket_svc.exports import service

    monkeypatch.setattr(service, "DOWNLOAD_BATCH", 2)
    made = [await create(client, f"第 {n} 张") for n in range(5)]
    rows = read_csv(await client.get("/v1/export/tickets.csv", headers=ADMIN))
    assert [row["id"] for row in rows] == [t["id"] for t in reversed(made)]  # newest first, each once


@pytest.fixture
async def small_client(infra, ticket_db, monkeypatch):
    service_env(monkeypatch, infra, "TICKET_", ticket_db)
    monkeypatch.setenv("TICKET_CONSUMERS_ENABLED", "false")
    monkeypatch.setenv("TICKET_EXPORT_XLSX_MAX_ROWS", "3")
    from ticket_svc.config import Settings
    from ticket_svc.main import create_app

    async with running_app(create_app(Settings())) as c:
        yield c


async def test_xlsx_beyond_its_row_limit_is_a_clear_422(small_client):
    for n in range(3):
        await create(small_client, f"t{n}")
    assert len(read_xlsx(await small_client.get("/v1/export/tickets.xlsx", headers=ADMIN))) == 3
    await create(small_client, "one too many")
    r = await small_client.get("/v1/export/tickets.xlsx", headers=ADMIN)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"].endswith("too-many-rows") and problem["max_rows"] == 3
    assert "tickets.csv" in problem["detail"]
    assert len(read_csv(await small_client.get("/v1/export/tickets.csv", headers=ADMIN))) == 4


async def test_every_export_is_audited_without_the_personal_data(client, caplog):
    """Exports carry requesters' names, addresses and numbers: each request leaves one record on the
    ``audit.pii_export`` logger (who, which route, how many rows, which filters by name)."""
    import logging

    await create(client, "审计 one")
    await create(client, "审计 two")
    with caplog.at_level(logging.INFO, logger="audit.pii_export"):
        read_csv(await client.get("/v1/export/tickets.csv", params={"priority": "normal"}, headers=ADMIN))
        read_xlsx(await client.get("/v1/export/tickets.xlsx", headers=SUPERVISOR))
        page = await client.get("/v1/export/tickets", params={"limit": 1}, headers=ADMIN)
        assert page.status_code == 200, page.text
    records = [r for r in caplog.records if r.name == "audit.pii_export"]
    assert [(r.actor, r.actor_role, r.route, r.rows, r.purpose) for r in records] == [
        ("user:root", "admin", "export.tickets.csv", 2, "export"),
        ("user:boss", "supervisor", "export.tickets.xlsx", 2, "export"),
        ("user:root", "admin", "export.tickets", 1, "export"),
    ]
    assert records[0].filters == ["priority"]
    assert all("dl@example.com" not in r.getMessage() and "dl@example.com" not in str(r.__dict__)
               for r in records)
