"""tests/security: the authorization matrix's summary line at the end of the run."""

from __future__ import annotations

#: lines test_matrix.py leaves for the terminal summary (the count of cells and how many passed)
SUMMARY: list[str] = []


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001 - pytest's hook signature
    if SUMMARY:
        terminalreporter.section("authorization matrix")
        for line in SUMMARY:
            terminalreporter.write_line(line)
