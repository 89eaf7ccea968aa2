"""The OpenAPI document: valid, complete (every route, nothing more), and true to the answers."""

from __future__ import annotations

import base64
import json
import re
from importlib import resources

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from werkzeug.exceptions import HTTPException

from mock_planhat import Config, create_app, openapi_models
from mock_planhat.routes import segment

API = {"Authorization": "Bearer mock-api-token"}
TENANT = "mock-tenant-token"
DOC_URI = "urn:mock-planhat:openapi"
METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module")
def doc() -> dict:
    text = resources.files("mock_planhat").joinpath("openapi.json").read_text("utf-8")
    return json.loads(text)


def _registry(doc: dict) -> Registry:
    return Registry().with_resource(DOC_URI, Resource.from_contents(doc, DRAFT202012))


def _resolve(doc: dict, node: dict) -> dict:
    """Follow a local ``$ref`` (components/responses) to its target."""
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def response_spec(doc: dict, path: str, method: str, status: int) -> dict:
    op = doc["paths"][path][method]
    assert str(status) in op["responses"], (
        f"{method.upper()} {path}: {status} is not documented ({sorted(op['responses'])})")
    return _resolve(doc, op["responses"][str(status)])


def check_body(doc: dict, spec: dict, response) -> None:
    """The response's JSON body validates against the documented schema."""
    assert response.mimetype == "application/json", response.mimetype
    schema = _rebase(spec["content"]["application/json"]["schema"])
    validator = Draft202012Validator(schema, registry=_registry(doc))
    errors = sorted(validator.iter_errors(response.get_json()), key=str)
    assert not errors, [e.message for e in errors[:5]]


def _rebase(schema):
    """An inline schema whose refs point into the document."""
    if isinstance(schema, dict):
        return {k: (DOC_URI + v if k == "$ref" and v.startswith("#") else _rebase(v))
                for k, v in schema.items()}
    if isinstance(schema, list):
        return [_rebase(v) for v in schema]
    return schema


def conforms(doc: dict, path: str, method: str, response) -> None:
    check_body(doc, response_spec(doc, path, method, response.status_code), response)


# ----- the document ------------------------------------------------------------------------
def test_document_is_valid_openapi_3_1(doc):
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_served_document_is_the_package_file(client, doc):
    response = client.get("/__admin/openapi.json")
    assert response.status_code == 200
    assert response.get_json() == doc


def _routes(app) -> dict[tuple[str, str], str]:
    """(endpoint, method) for every route of the app, less Flask's own static route and the
    dashboard's HTML pages (not an API: tests/test_dashboard.py and the browser tests)."""
    return {(rule.endpoint, method.lower()) for rule in app.url_map.iter_rules()
            if rule.endpoint not in ("static", "models.get_only")  # get_only: answers 405
            and not rule.endpoint.startswith("dashboard.")
            for method in (rule.methods or ()) if method not in ("HEAD", "OPTIONS")}


def _sample(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_every_route_is_documented_and_nothing_else(doc):
    """Each documented operation reaches a route; each route is reached by one."""
    app = create_app(Config())
    adapter = app.url_map.bind("localhost")
    reached = set()
    for path, item in doc["paths"].items():
        for method in set(item) & METHODS:
            try:
                endpoint, _args = adapter.match(_sample(path), method.upper())
            except HTTPException as exc:  # pragma: no cover - the failure message
                pytest.fail(f"{method.upper()} {path}: the server has no such route ({exc})")
            assert endpoint != "static", path
            reached.add((endpoint, method))
    missing = _routes(app) - reached
    assert not missing, f"routes missing from the document: {sorted(missing)}"


def test_model_paths_are_generated_from_the_table(doc):
    """The models' paths and schemas are the table's (``python -m mock_planhat.openapi_models``
    rewrites them after a change to mock_planhat/models.py)."""
    paths, schemas = openapi_models.generated(doc)
    for path, item in paths.items():
        assert doc["paths"].get(path) == item, f"{path}: run python -m mock_planhat.openapi_models"
    for name, schema in schemas.items():
        assert doc["components"]["schemas"].get(name) == schema, name


def test_segment_call_types_are_documented(doc):
    kinds = {*segment.CALL_TYPES, "batch", "import"}
    documented = {p.removeprefix("/v1/") for p in doc["paths"] if p.startswith("/v1/")}
    assert documented == kinds


def test_documented_paths_are_templated_like_the_routes(doc):
    """A rule's converter variables appear as {name} in the document (no /v1/{kind})."""
    rules = {re.sub(r"<(?:[a-z]+:)?([^>]+)>", r"{\1}", rule.rule)
             for rule in create_app(Config()).url_map.iter_rules()}
    for path in doc["paths"]:
        if "{" in path:
            assert path in rules, path


def test_every_operation_documents_its_errors(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            codes = set(op["responses"])
            assert codes & {"200", "201"}, (path, method)
            if path.startswith(("/analytics", "/dimensiondata/")):
                # data sinks: any body, any content type; only a too-big body is refused
                assert "413" in codes and "415" not in codes, (path, method)
            elif "requestBody" in op and not path.startswith(("/v1/", "/dock/")):
                assert {"400", "413", "415"} <= codes, (path, method)
            elif "requestBody" in op:  # Segment's endpoints answer 400 for every bad body
                assert "400" in codes, (path, method)
            if path.startswith("/__admin"):
                assert op["security"] == [] and "403" in codes, (path, method)
                continue
            assert {"408", "429", "500", "502", "503", "504"} <= codes, (path, method)
            if path.startswith(("/analytics", "/dimensiondata/")):
                assert op["security"] == [], (path, method)
            elif path.startswith("/v1/"):
                assert op["security"] == [{}, {"tenantBasic": []}], (path, method)
            elif path == "/dock/segment":
                assert op["security"] == [{"tenantBasic": []}] and "401" in codes
            else:
                assert op["security"] == [{"bearer": []}, {"basic": []}], (path, method)
                assert "401" in codes, (path, method)


def test_every_error_response_uses_the_error_schema(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            for status, spec in op["responses"].items():
                if int(status) >= 400:
                    schema = _resolve(doc, spec)["content"]["application/json"]["schema"]
                    expected = "SegmentError" if path.startswith("/v1/") and status in (
                        "400", "401") else "Error"
                    assert schema == {"$ref": f"#/components/schemas/{expected}"}, (path, status)
    error = doc["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error", "message", "field"}


# ----- answers validate against the document ----------------------------------------------
@pytest.fixture
def small_app():
    return create_app(Config(max_body=2048))


@pytest.fixture
def c(small_app):
    return small_app.test_client()


def test_end_user_answers_conform(doc, c):
    co = c.post("/companies", json={"name": "Acme", "externalId": "acme",
                                    "domains": ["acme.com"]}, headers=API)
    conforms(doc, "/companies", "post", co)
    made = c.post("/endusers", json={"email": "Ada@acme.com", "externalId": "u-1",
                                     "firstName": "Ada", "custom": {"plan": "pro"}}, headers=API)
    assert made.status_code == 200
    conforms(doc, "/endusers", "post", made)
    held = c.post("/endusers", json={"email": "x@nowhere.org"}, headers=API)
    assert held.status_code == 202
    conforms(doc, "/endusers", "post", held)
    bulk = c.put("/endusers", json=[{"externalId": "u-1", "lastName": "L"}, {"email": 5},
                                    {"email": "y@nowhere.org"}], headers=API)
    assert bulk.status_code == 206
    conforms(doc, "/endusers", "put", bulk)
    listed = c.get("/endusers?limit=10&sort=-email&select=email", headers=API)
    conforms(doc, "/endusers", "get", listed)
    conforms(doc, "/endusers/{key}", "get", c.get("/endusers/extid-u-1", headers=API))
    conforms(doc, "/endusers/{key}", "put",
             c.put("/endusers/extid-u-1", json={"phone": "1"}, headers=API))
    conforms(doc, "/endusers/{key}", "delete", c.delete("/endusers/extid-u-1", headers=API))
    conforms(doc, "/endusers/{key}", "get", c.get("/endusers/extid-u-1", headers=API))
    conforms(doc, "/leancompanies", "get", c.get("/leancompanies", headers=API))
    conforms(doc, "/companies/{key}", "delete", c.delete("/companies/extid-acme", headers=API))


def test_an_email_attach_answer_conforms(doc, c):
    c.post("/companies", json={"name": "Acme", "externalId": "acme"}, headers=API)
    c.post("/endusers", json={"email": "a@acme.com", "externalId": "crm-1",
                              "companyExternalId": "acme"}, headers=API)
    bulk = c.put("/endusers", json=[{"email": "A@acme.com", "externalId": "u-1"}], headers=API)
    assert bulk.get_json()["updatesKeys"][0]["matchedBy"] == "email"
    conforms(doc, "/endusers", "put", bulk)
    report = c.get("/__admin/report")
    assert report.get_json()["entries"][0]["decision"]["matchedBy"] == "email"
    conforms(doc, "/__admin/report", "get", report)
    conforms(doc, "/__admin/state", "get", c.get("/__admin/state"))


def test_error_answers_conform(doc, c):
    cases = [
        ("/endusers", "get", c.get("/endusers")),
        ("/endusers", "get", c.get("/endusers?limit=ten", headers=API)),
        ("/endusers", "post", c.post("/endusers", data="{", headers=API,
                                     content_type="application/json")),
        ("/endusers", "post", c.post("/endusers", data="a=1", headers=API,
                                     content_type="application/x-www-form-urlencoded")),
        ("/endusers", "put", c.put("/endusers", json=[{}] * 5001, headers=API)),
        ("/companies", "post", c.post("/companies", json={"name": "x" * 4000}, headers=API)),
        ("/companies/{key}", "get", c.get("/companies/nope", headers=API)),
        ("/__admin/state", "get", c.get("/__admin/state?tenant=nope")),
    ]
    for path, method, response in cases:
        assert 400 <= response.status_code < 500
        conforms(doc, path, method, response)


def test_unknown_route_and_wrong_method_conform(doc, c):
    missing = c.get("/nope", headers=API)
    assert missing.status_code == 404
    check_body(doc, doc["components"]["responses"]["NotFound"], missing)
    wrong = c.delete("/endusers", headers=API)
    assert wrong.status_code == 405 and "GET" in wrong.headers["Allow"]
    check_body(doc, doc["components"]["responses"]["MethodNotAllowed"], wrong)


def test_tracking_and_admin_answers_conform(doc, c):
    conforms(doc, "/analytics/{token}", "post",
             c.post(f"/analytics/{TENANT}", json={"externalId": "nobody", "action": "x"}))
    conforms(doc, "/analytics/{token}", "post", c.post("/analytics/nope", json={}))
    conforms(doc, "/analytics/bulk/{token}", "post",
             c.post(f"/analytics/bulk/{TENANT}", json=[{"email": "a@b.c"}, 3]))
    conforms(doc, "/dimensiondata/{token}", "post",
             c.post(f"/dimensiondata/{TENANT}", json=[{"dimensionId": "d", "value": 1}, {}]))
    for path in ("/analytics/{token}", "/analytics/bulk/{token}", "/dimensiondata/{token}"):
        bad = c.post(path.replace("{token}", TENANT), data=b"<not json/>",
                     content_type="text/xml")
        assert bad.status_code == 200
        conforms(doc, path, "post", bad)
    conforms(doc, "/__admin/report", "get", c.get("/__admin/report"))
    for path in ("/__admin/state", "/__admin/report", "/__admin/requests", "/__admin/tenants",
                 "/__admin/health", "/__admin/pending", "/__admin/faults"):
        conforms(doc, path, "get", c.get(path))
    made = c.post("/__admin/tenants")
    conforms(doc, "/__admin/tenants", "post", made)
    for token in (made.get_json()["apiToken"], "nope", TENANT):  # 200, 404, 409
        conforms(doc, "/__admin/tenants/{token}", "delete", c.delete(f"/__admin/tenants/{token}"))
    rule = c.post("/__admin/faults", json={"path": "/endusers", "status": 429, "retryAfter": 2})
    conforms(doc, "/__admin/faults", "post", rule)
    faulted = c.get("/endusers", headers=API)
    assert faulted.status_code == 429 and faulted.headers["Retry-After"] == "2"
    conforms(doc, "/endusers", "get", faulted)
    conforms(doc, "/__admin/faults", "delete", c.delete("/__admin/faults"))
    conforms(doc, "/__admin/reset", "post", c.post("/__admin/reset"))
    snap = c.get("/__admin/snapshot")
    conforms(doc, "/__admin/snapshot", "get", snap)
    conforms(doc, "/__admin/snapshot", "get", c.get("/__admin/snapshot?tenant=nope"))
    conforms(doc, "/__admin/snapshot", "put", c.put("/__admin/snapshot", json=snap.get_json()))
    conforms(doc, "/__admin/snapshot", "put", c.put("/__admin/snapshot", json={"format": 1}))
    conforms(doc, "/__admin/scenario", "get", c.get("/__admin/scenario"))  # 409: nothing yet
    conforms(doc, "/__admin/clock", "get", c.get("/__admin/clock"))
    conforms(doc, "/__admin/clock", "post", c.post("/__admin/clock", json={"advance": "P1D"}))
    conforms(doc, "/__admin/clock", "post", c.post("/__admin/clock", json={"advance": "P1M"}))


def test_segment_answers_conform(doc, c):
    basic = {"Authorization": "Basic " + base64.b64encode(f"{TENANT}:".encode()).decode()}
    conforms(doc, "/v1/identify", "post", c.post("/v1/identify", headers=basic, json={
        "userId": "u-9", "traits": {"email": "z@nowhere.org"}}))
    conforms(doc, "/v1/track", "post", c.post("/v1/track", data=b"{", headers=basic))
    conforms(doc, "/v1/track", "post", c.post("/v1/track", json={"userId": "u"}))
    conforms(doc, "/v1/batch", "post", c.post("/v1/batch", data=b"not gzip", headers={
        **basic, "Content-Encoding": "gzip"}))
    conforms(doc, "/v1/batch", "post", c.post("/v1/batch", json={
        "writeKey": "nope", "batch": [{"type": "track", "userId": "u", "event": "e"}]}))
    conforms(doc, "/dock/segment", "post", c.post("/dock/segment", headers=basic, json={
        "type": "identify", "userId": "u-9"}))
    conforms(doc, "/dock/segment", "post", c.post("/dock/segment", json={}))
    conforms(doc, "/dock/segment", "post", c.post("/dock/segment", headers=basic, json=[]))


def test_model_answers_conform(doc, c):
    from mock_planhat.models import MODELS
    c.post("/companies", json={"name": "Acme", "externalId": "acme"}, headers=API)
    for model in MODELS:
        base, item = f"/{model.path}", f"/{model.path}/{{key}}"
        row = {**model.example, **{k: "2024-01-01" for k in model.required}}
        if model.company_owned:
            row[model.company_field] = "extid-acme"
        row.update({k: v for k, v in model.example.items() if k in model.required})
        made = c.post(base, json={**row, "externalId": "e-1"}, headers=API)
        assert made.status_code == 200, (model.path, made.get_json())
        conforms(doc, base, "post", made)
        conforms(doc, base, "post", c.post(base, json={**row, "externalId": "e-1"}, headers=API))
        conforms(doc, base, "get", c.get(f"{base}?limit=5&sort=-externalId", headers=API))
        conforms(doc, base, "get", c.get(f"{base}?nope=1", headers=API))
        if model.bulk:
            conforms(doc, base, "put", c.put(base, json=[{"externalId": "e-1"}, {"_id": 1}],
                                             headers=API))
        conforms(doc, item, "get", c.get(f"{base}/extid-e-1", headers=API))
        conforms(doc, item, "put", c.put(f"{base}/extid-e-1", json={"custom": 1}, headers=API))
        conforms(doc, item, "delete", c.delete(f"{base}/extid-e-1", headers=API))
        conforms(doc, item, "get", c.get(f"{base}/extid-e-1", headers=API))
    conforms(doc, "/dimensiondata", "get", c.get("/dimensiondata?cid=extid-acme", headers=API))
    conforms(doc, "/dimensiondata", "get", c.get("/dimensiondata?from=x", headers=API))
