"""The composed document (gateway/proxy/openapi.py ``merge``): no service's schema overwrites
another's, only what the gateway forwards is in it, and the gateway's own answers are declared."""

from __future__ import annotations

from gateway.proxy.openapi import merge


def _doc(paths: dict, schemas: dict) -> dict:
    return {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": paths,
            "components": {"schemas": schemas}}


def _operation(ref: str, *, security: list | None = None) -> dict:
    operation = {"responses": {"200": {"content": {"application/json": {"schema": {"$ref": ref}}}}}}
    if security is not None:
        operation["security"] = security
    return operation


OWN = _doc({"/v1/auth/login": {"post": _operation("#/components/schemas/Token", security=[])},
            "/v1/users": {"get": _operation("#/components/schemas/User")}},
           {"Token": {"type": "object"}, "User": {"type": "object"}, "Problem": {"type": "object"}})
TICKETS = _doc({"/v1/tickets": {"get": _operation("#/components/schemas/Page")},
                "/v1/hidden": {"get": _operation("#/components/schemas/Page")}},
               {"Page": {"type": "object", "properties": {"item": {"$ref": "#/components/schemas/Item"}}},
                "Item": {"type": "object", "properties": {"subject": {"type": "string"}}},
                "Problem": {"type": "object"}})
CUSTOMERS = _doc({"/v1/customers": {"get": _operation("#/components/schemas/Page")}},
                 {"Page": {"type": "object", "properties": {"item": {"$ref": "#/components/schemas/Item"}}},
                  "Item": {"type": "object", "properties": {"name": {"type": "string"}}},
                  "Problem": {"type": "object"}})


def test_schemas_of_one_name_from_two_services_both_stay():
    doc = merge(OWN, [("ticket service", TICKETS, {"tickets"}), ("customer service", CUSTOMERS, {"customers"})])
    schemas = doc["components"]["schemas"]
    assert schemas["Item"]["properties"] == {"subject": {"type": "string"}}
    # the customer service's Item differs: renamed, and so is its Page, which refers to it
    assert schemas["CustomerService_Item"]["properties"] == {"name": {"type": "string"}}
    assert schemas["CustomerService_Page"]["properties"]["item"] == {"$ref": "#/components/schemas/CustomerService_Item"}
    customers = doc["paths"]["/v1/customers"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert customers == {"$ref": "#/components/schemas/CustomerService_Page"}
    tickets = doc["paths"]["/v1/tickets"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert tickets == {"$ref": "#/components/schemas/Page"}
    assert "CustomerService_Problem" not in schemas and "TicketService_Problem" not in schemas  # identical: once


def test_only_forwarded_prefixes_are_published():
    doc = merge(OWN, [("ticket service", TICKETS, {"tickets"})])
    assert "/v1/tickets" in doc["paths"] and "/v1/hidden" not in doc["paths"]


def test_the_gateway_declares_its_own_answers():
    doc = merge(OWN, [("ticket service", TICKETS, {"tickets"})])
    forwarded = doc["paths"]["/v1/tickets"]["get"]["responses"]
    assert {"429", "502", "504"} <= forwarded.keys()
    assert forwarded["502"]["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    own = doc["paths"]["/v1/users"]["get"]["responses"]
    assert "429" in own and "502" not in own
    assert "429" not in doc["paths"]["/v1/auth/login"]["post"]["responses"]  # public: declares its own
    assert doc["security"] == [{"bearer": []}] and "bearer" in doc["components"]["securitySchemes"]
