"""bench/profile.py's summary of py-spy's raw samples (pure: no stack, no py-spy)."""

from __future__ import annotations

from bench.profile import summarise


def test_self_and_inclusive_shares_of_collapsed_stacks(tmp_path):
    raw = tmp_path / "sla-svc.txt"
    raw.write_text(
        "main (app.py:1);_apply (helpdesk_common/consumer.py:10);execute (asyncpg/connection.py:5) 6\n"
        "main (app.py:1);_apply (helpdesk_common/consumer.py:12);build (sla_svc/plan.py:3) 3\n"
        "main (app.py:1);select (selectors.py:9) 1\n"
        "garbage line\n")
    text = summarise(raw, top=3, inclusive=5)
    lines = text.splitlines()
    assert lines[0] == "sla-svc: 10 samples"
    # self: the frame on top, line numbers folded together
    assert "   60.0%  execute (asyncpg/connection.py)" in text
    assert "   30.0%  build (sla_svc/plan.py)" in text
    # inclusive: a frame counted once per sample however often it appears; only named libraries
    assert "   90.0%  _apply (helpdesk_common/consumer.py)" in text
    assert not any("selectors" in line for line in lines[lines.index("  inclusive:"):])


def test_statements_per_ticket_by_database():
    from bench.profile import statements_table

    rows = [{"db": "ticket", "calls": 200, "ms": 50.0, "plans": 200, "plan_ms": 20.0,
             "query": "INSERT INTO tickets\n  (id) VALUES ($1)"},
            {"db": "ticket", "calls": 100, "ms": 1.0, "plans": 0, "plan_ms": 0.0, "query": "BEGIN"},
            {"db": "sla", "calls": 100, "ms": 10.0, "plans": 1, "plan_ms": 0.5, "query": "SELECT generation FROM sla_state"}]
    text = statements_table(rows, 100, top=1)
    lines = text.splitlines()
    assert lines[0].startswith("SQL statements per ticket (100 tickets")
    # per database: calls, execution and planning time per ticket, the busiest database first
    assert lines[2].split() == ["ticket", "3.00", "0.510", "0.200", "100"]
    assert lines[3].split() == ["sla", "1.00", "0.100", "0.005", "100"]
    assert lines[4].split() == ["all", "4.00", "0.610", "0.205"]
    # each database's most frequent statement, on one line, with its mean time per call, how
    # often it was planned per call and the mean time of a plan
    assert lines[5] == "  ticket: most frequent"
    assert lines[6] == "      2.00/ticket   0.250 ms  1.00 plans  0.100 ms  INSERT INTO tickets (id) VALUES ($1)"
    assert not any(line.endswith("BEGIN") for line in lines)  # top=1


def test_statements_per_ticket_a_consumer_took_in():
    """A consumer behind when the window opened works off more tickets in it than were created:
    its database's statements are divided by the tickets its inbox took in (round 22)."""
    from bench.profile import statements_table

    rows = [{"db": "ticket", "calls": 100, "ms": 10.0, "plans": 0, "plan_ms": 0.0, "query": "INSERT INTO tickets"},
            {"db": "customer", "calls": 300, "ms": 30.0, "plans": 0, "plan_ms": 0.0, "query": "SELECT owners"}]
    lines = statements_table(rows, 100, top=1, taken_in={"customer": 150}).splitlines()
    assert lines[2].split() == ["customer", "2.00", "0.200", "0.000", "150"]
    assert lines[3].split() == ["ticket", "1.00", "0.100", "0.000", "100"]  # no inbox: the tickets created
    assert lines[4].split() == ["all", "3.00", "0.300", "0.000"]
    assert lines[6] == "      2.00/ticket   0.100 ms  0.00 plans  0.000 ms  SELECT owners"


def test_perf_rows_by_process_group_library_and_postgres_function():
    from bench.profile import parse_perf_rows, summarise_perf

    by_dso = parse_perf_rows(
        "# Overhead  Pid:Command  Shared Object\n"
        "#\n"
        "    40.00%    101:python           libpython3.11.so.1.0\n"
        "    10.00%    102:python           [kernel.kallsyms]\n"  # a thread of the same service
        "    20.00%    201:postgres         postgres\n"
        "     5.00%    301:tokio-rt-worker  tansu\n"
        "     5.00%    999:python           libpython3.11.so.1.0\n"  # another Python on the machine
        "    20.00%      0:swapper          [kernel.kallsyms]\n")
    by_symbol = parse_perf_rows(
        "    15.00%    201:postgres         [.] ExecInsert\n"
        "     5.00%    888:postgres         [.] ExecInsert\n"  # another stack's backend
        "     5.00%    201:postgres         [k] tcp_sendmsg\n")
    assert by_dso[0] == (40.0, 101, "python", "libpython3.11.so.1.0")
    text = summarise_perf(by_dso, by_symbol, {101: "ticket-svc", 102: "ticket-svc", 201: "postgres", 301: "broker"},
                          {"ticket-svc"})
    lines = text.splitlines()
    # each group's share, thread ids folded into their process's group; the rest named as such
    assert lines[1:6] == ["   50.00%  ticket-svc", "   20.00%  postgres", "   20.00%  idle", "    5.00%  broker",
                          "    5.00%  other on the machine: python"]
    # the services' CPU by library, the kernel's samples included; not the other Python's
    assert "   40.00%  libpython3.11.so.1.0" in text and "   10.00%  [kernel.kallsyms]" in text
    # PostgreSQL's functions: the stack's own backends only
    assert text.endswith("   15.00%  [.] ExecInsert\n    5.00%  [k] tcp_sendmsg")
