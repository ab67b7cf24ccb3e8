"""The If-Match rule (helpdesk_common.concurrency), pure and table-tested."""

import pytest

from helpdesk_common.concurrency import check_version, etag, wanted_versions
from helpdesk_common.problems import Problem


@pytest.mark.parametrize(("header", "wanted"), [
    (None, None), ("*", None), (" * ", None),
    ('W/"7"', {7}), ('"7"', {7}), ("7", {7}), (' W/"7" , "8",9 ', {7, 8, 9}),
    ("garbage", set()), ('W/"-1"', set()), ('W/"12345678901"', set()), ("", set()), ('W/"7", junk', {7}),
])
def test_wanted_versions(header, wanted):
    assert wanted_versions(header) == (None if wanted is None else frozenset(wanted))


@pytest.mark.parametrize(("current", "header", "passes"), [
    (3, None, True), (3, "*", True), (3, 'W/"3"', True), (3, 'W/"2", W/"3"', True),
    (3, 'W/"2"', False), (3, "garbage", False), (3, "", False),
])
def test_check_version(current, header, passes):
    if passes:
        check_version(current, header)
        return
    with pytest.raises(Problem) as info:
        check_version(current, header, what="team")
    problem = info.value
    assert (problem.status, problem.kind, problem.extensions) == (412, "version-conflict", {"current_version": 3})
    assert "team" in problem.detail


def test_etag():
    assert etag(12) == 'W/"12"' and wanted_versions(etag(12)) == {12}
