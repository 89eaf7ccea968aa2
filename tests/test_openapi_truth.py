"""Issue 9 §11: the OpenAPI document says what the fake does — each case below was a mismatch
Schemathesis reported (a request the document forbids answered 2xx, or one it allows refused).
For each, the document's request schema and the fake's answer must agree."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

API = {"Authorization": "Bearer mock-api-token"}
URI = "urn:mock-planhat:openapi"


@pytest.fixture(scope="module")
def doc():
    return json.loads(resources.files("mock_planhat").joinpath("openapi.json").read_text("utf-8"))


def _valid(doc, schema, value) -> bool:
    registry = Registry().with_resource(URI, Resource.from_contents(doc, DRAFT202012))
    rebased = json.loads(json.dumps(schema).replace('"#/', f'"{URI}#/'))
    return Draft202012Validator(rebased, registry=registry).is_valid(value)


def _body_schema(doc, path, method):
    return doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]


def _param_schema(doc, path, name):
    [param] = [p for p in doc["paths"][path]["get"]["parameters"] if p["name"] == name]
    return param["schema"]


BODY_CASES = [
    ("/companies", "post", {}, False),                       # a new company needs a name
    ("/companies", "post", {"name": "  "}, False),
    ("/companies", "post", {"name": "Acme", "externalId": None, "custom": None}, True),
    ("/companies", "post", {"name": "Acme", "_id": "0" * 24}, False),  # the server's to set
    ("/endusers", "post", {"companyId": "extid-acme"}, False),  # no identifier
    ("/endusers", "post", {"email": "a@acme.com", "externalId": None}, True),  # null: not sent
    ("/endusers", "post", {"email": " b@acme.com\t", "phone": None, "tags": ["x"]}, True),
    ("/endusers", "post", {"externalId": " "}, False),         # blank key
    ("/endusers", "post", {"externalId": "a\x01b"}, False),    # control character
    ("/endusers", "post", {"email": "a\x7f@acme.com"}, False),
    ("/endusers", "post", {"email": "c@acme.com", "custom": [1]}, False),
]


@pytest.mark.parametrize("path,method,body,valid", BODY_CASES)
def test_openapi_truth_request_bodies(doc, api, company, path, method, body, valid):
    assert _valid(doc, _body_schema(doc, path, method), body) is valid
    response = getattr(api, method)(path, json=body)
    assert (200 <= response.status_code < 300) is valid, response.get_json()


@pytest.mark.parametrize("path,body", [
    ("/analytics/mock-tenant-token", {"action": "a", "info": [1, 2]}),   # bad row: reported
    ("/analytics/bulk/mock-tenant-token", [{"externalId": 5}, "not a row"]),
    ("/dimensiondata/mock-tenant-token", [{"dimensionId": "d", "value": 1, "date": {}}]),
])
def test_openapi_truth_tracking_rows_are_answered_not_refused(doc, client, path, body):
    template = "/analytics/bulk/{token}" if "bulk" in path else \
        "/dimensiondata/{token}" if "dimension" in path else "/analytics/{token}"
    assert _valid(doc, _body_schema(doc, template, "post"), body)
    assert client.post(path, json=body).status_code == 200


@pytest.mark.parametrize("path,rows", [
    ("/endusers", [{"email": "x@acme.com", "custom": [None]}]),
    ("/companies", [{"name": "B", "source": "s" * 70_000}]),
])
def test_openapi_truth_bulk_rows_answered_206(doc, api, company, path, rows):
    assert _valid(doc, _body_schema(doc, path, "put"), rows)
    assert api.put(path, json=rows).status_code == 206


@pytest.mark.parametrize("name,value,valid", [
    ("limit", "", False), ("sort", "", False), ("sort", "-", False), ("sort", "-name", True),
    ("externalId", "", False), ("externalId", ",", False), ("externalId", "a,b", True),
    ("archived", "maybe", False), ("archived", "true", True),
])
def test_openapi_truth_list_queries(doc, api, name, value, valid):
    schema = _param_schema(doc, "/endusers", name)
    documented = _valid(doc, schema, value) if name != "limit" else value != ""
    assert documented is valid
    response = api.get("/endusers", query_string={name: value})
    assert (response.status_code == 200) is valid, response.get_json()


@pytest.mark.parametrize("rule,valid", [
    ({"status": None, "delay": 0, "retryAfter": 1}, False),  # neither a status nor a delay
    ({"status": 429.0, "count": 2.0}, True),                  # JSON numbers, whole
    ({"delay": 0.01}, True),
])
def test_openapi_truth_fault_rules(doc, client, rule, valid):
    assert _valid(doc, _body_schema(doc, "/__admin/faults", "post"), rule) is valid
    response = client.post("/__admin/faults", json=rule)
    assert (response.status_code == 201) is valid, response.get_json()
    client.delete("/__admin/faults")


def test_openapi_truth_segment_without_write_key_is_documented_401(doc, client):
    assert "401" in doc["paths"]["/v1/batch"]["post"]["responses"]
    assert client.post("/v1/batch", json={"batch": []}).status_code == 401
