"""The API document states what the rule endpoints take: every body schemathesis generates from
the composed schema of a trigger, an automation or a dry run is one the models accept (so its
positive-data check meets no refusal it cannot explain), and the examples are accepted too."""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from helpdesk_common.testing import SESSION_PII_ENV
from ticket_svc.automation.schemas import AutomationWrite, DryRunIn, TriggerWrite
from ticket_svc.config import Settings
from ticket_svc.main import create_app
from ticket_svc.processes.definitions import ProcessIn

EXAMPLES = int(os.environ.get("AUTOMATION_PROPERTY_EXAMPLES", "150"))


@pytest.fixture(scope="module")
def document() -> Any:
    keys = SESSION_PII_ENV["TICKET_"]  # module scope: before the per-test fixture sets them in the environment
    app = create_app(Settings(pii_keys=keys["TICKET_PII_KEYS"], pii_index_key=keys["TICKET_PII_INDEX_KEY"]))
    return schemathesis.openapi.from_dict(app.openapi())


@pytest.mark.parametrize(("path", "model"), [("/v1/triggers", TriggerWrite), ("/v1/automations", AutomationWrite),
                                             ("/v1/rules/dry-run", DryRunIn)])
def test_every_body_the_document_allows_is_accepted(document: Any, path: str, model: Any) -> None:
    refused: list[tuple[Any, str]] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(document[path]["POST"].as_strategy())
    def check(case: Any) -> None:
        try:
            model.model_validate(case.body)
        except ValueError as exc:
            refused.append((case.body, str(exc)))

    check()
    assert refused == []


def test_the_examples_are_valid_bodies() -> None:
    doc = create_app(Settings()).openapi()
    schemas = doc["components"]["schemas"]
    for name, model in (("TriggerWrite", TriggerWrite), ("AutomationWrite", AutomationWrite)):
        for example in schemas[name]["examples"]:
            model.model_validate(example)
    put = doc["paths"]["/v1/processes/{ticket_type}"]["put"]["requestBody"]["content"]["application/json"]
    [refund] = put["schema"]["examples"]
    assert [step.key for step in ProcessIn.model_validate(refund).steps] == ["approval", "refund", "confirm"]
