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
