"""Every report as CSV and XLSX: the same rows as the JSON, and text that a spreadsheet would run as
a formula (=, +, -, @, tab, CR) arrives inert (a leading quote; XLSX cells typed as strings)."""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook

from .conftest import ADMIN, SUPERVISOR_X, TEAM_X, rollup, sla_rollup, sla_target, ticket_row, ticket_rollups

EVIL = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
DAY = {"from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"}
BUCKET = datetime(2026, 12, 1, 10, tzinfo=UTC)


def csv_cells(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(body[3:].decode("utf-8"), newline="")))


def xlsx_cells(body: bytes) -> list[list[object]]:
    sheet = load_workbook(io.BytesIO(body), read_only=True).worksheets[0]
    return [[c for c in row] for row in sheet.iter_rows(values_only=True)]


def assert_inert(cells: list[list[object]], *, xml: bool = False) -> None:
    """No cell starts with a formula character: each evil text appears, quoted. (XML reads a
    carriage return back as a line feed, so the XLSX check compares after that normalisation.)"""
    texts = [c for row in cells for c in row if isinstance(c, str)]
    for text in texts:
        assert not text.startswith(("=", "+", "-", "@", "\t", "\r")), repr(text)
    for evil in EVIL:
        expected = "'" + (evil.replace("\r", "\n") if xml else evil)
        assert expected in texts, evil


def sheet_has_no_formula(body: bytes) -> bool:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return all(b"<f>" not in archive.read(name) and b"<f " not in archive.read(name)
                   for name in archive.namelist() if name.startswith("xl/worksheets/"))


@pytest.fixture
async def evil_rows(raw):
    now = datetime.now(UTC)
    for evil in EVIL:
        await rollup(raw, dim="tag", bucket=BUCKET, value=evil, created=1, solved=1, resolution_sum=10)
        await rollup(raw, dim="agent", bucket=now.replace(minute=0, second=0, microsecond=0), value=evil, solved=1,
                     resolution_sum=10)
        await sla_rollup(raw, dim="all", bucket=BUCKET, policy=evil, metric="first_response", achieved=1)
        ticket = await ticket_row(raw, created_at=now - timedelta(hours=1), team_id=TEAM_X, assignee_id=evil,
                                  channel=evil, status="open")
        await sla_target(raw, ticket_id=ticket, metric="first_response", due_at=now + timedelta(minutes=5),
                         policy=evil, event_at=now)
        await raw.execute(
            "INSERT INTO step_runs (step_id, ticket_id, step, kind, started_at) VALUES ($1, $2, $3, 'task', $4)",
            uuid.uuid4(), ticket, evil, now - timedelta(minutes=30))
    await ticket_rollups(raw, bucket=BUCKET, created=6)


REPORTS = [
    ("/v1/analytics/trends", {"metric": "tickets_created", "by": "tag", **DAY}, "trends-tickets_created"),
    ("/v1/analytics/breakdown", {"metric": "resolution_minutes", "by": "tag", **DAY}, "breakdown-resolution_minutes-tag"),
    ("/v1/analytics/leaderboard", {"metric": "resolution_minutes", "entity": "agent", "period": "today"},
     "leaderboard-resolution_minutes-agent"),
    ("/v1/analytics/sla", DAY, "sla-compliance"),
    ("/v1/analytics/at-risk", {}, "at-risk"),
    ("/v1/analytics/steps", {}, "steps"),
]


@pytest.mark.parametrize(("path", "params", "name"), REPORTS)
async def test_csv_download_is_formula_safe(reports_api, evil_rows, path, params, name):
    r = await reports_api.get(path, headers=ADMIN, params={**params, "format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == f'attachment; filename="{name}.csv"'
    cells = csv_cells(r.content)
    assert len(cells) > len(EVIL)  # header + at least one row per evil value
    assert_inert(cells)


@pytest.mark.parametrize(("path", "params", "name"), REPORTS)
async def test_xlsx_download_is_formula_safe(reports_api, evil_rows, path, params, name):
    r = await reports_api.get(path, headers=ADMIN, params={**params, "format": "xlsx"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert r.headers["content-disposition"] == f'attachment; filename="{name}.xlsx"'
    cells = xlsx_cells(r.content)
    assert_inert(cells, xml=True)
    assert sheet_has_no_formula(r.content)
    numbers = [c for row in cells[1:] for c in row if isinstance(c, int | float)]
    assert numbers, "figures stay numbers in the workbook"


async def test_csv_rows_match_the_json(reports_api, raw):
    await ticket_rollups(raw, bucket=BUCKET, extra={"tag": "退款"}, solved=2, resolution_sum=30)
    params = {"metric": "resolution_minutes", "by": "tag", **DAY}
    body = (await reports_api.get("/v1/analytics/breakdown", headers=ADMIN, params=params)).json()
    cells = csv_cells((await reports_api.get("/v1/analytics/breakdown", headers=ADMIN,
                                             params={**params, "format": "csv"})).content)
    assert cells == [["by", "key", "metric", "value", "n"], ["tag", "退款", "resolution_minutes", "15.0", "2"]]
    assert body["items"] == [{"key": "退款", "value": 15.0, "n": 2}]


async def test_steps_download_is_scoped_too(reports_api, raw):
    now = datetime.now(UTC)
    mine = await ticket_row(raw, created_at=now, team_id=TEAM_X)
    other = await ticket_row(raw, created_at=now, team_id=uuid.uuid4())
    for ticket, step in ((mine, "approve"), (other, "secret-step")):
        await raw.execute("INSERT INTO step_runs (step_id, ticket_id, step, kind, started_at) VALUES ($1, $2, $3, "
                          "'approval', $4)", uuid.uuid4(), ticket, step, now)
    r = await reports_api.get("/v1/analytics/steps", headers=SUPERVISOR_X, params={"format": "csv"})
    assert r.status_code == 200
    assert [row[0] for row in csv_cells(r.content)[1:]] == ["approve"]
    everyone = (await reports_api.get("/v1/analytics/steps", headers=ADMIN)).json()
    assert [i["step"] for i in everyone["items"]] == ["approve", "secret-step"]


async def test_the_board_downloads_as_figure_value_rows(reports_api, raw):
    await ticket_rollups(raw, bucket=datetime.now(UTC).replace(minute=0, second=0, microsecond=0), created=2,
                         csat_n=1, csat_satisfied=1, csat_rating_sum=5)
    await ticket_row(raw, created_at=datetime.now(UTC), status="open", event_at=datetime.now(UTC))
    body = (await reports_api.get("/v1/analytics/kpis", headers=ADMIN, params={"tz": "Asia/Shanghai"})).json()
    r = await reports_api.get("/v1/analytics/kpis", headers=ADMIN, params={"tz": "Asia/Shanghai", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-disposition"] == 'attachment; filename="kpis.csv"'
    cells = dict(csv_cells(r.content)[1:])
    assert cells["tickets_total"] == str(body["tickets_total"]) == "2"
    assert cells["csat.responses"] == "1" and cells["backlog.lt_1h"] == "1" and cells["tz"] == "Asia/Shanghai"
    x = await reports_api.get("/v1/analytics/kpis", headers=ADMIN, params={"format": "xlsx"})
    assert x.status_code == 200 and xlsx_cells(x.content)[0] == ["figure", "value"]
