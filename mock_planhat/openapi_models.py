"""The OpenAPI paths and schemas of every model in `models.MODELS`, generated from the table.

``python -m mock_planhat.openapi_models`` writes them into ``mock_planhat/openapi.json`` (the
rest of the document is hand-written and left as it is, apart from the state's model lists and
company delete's 409); ``tests/test_openapi.py`` fails when the file and the table disagree.
After a merge conflict in openapi.json: take the other side's file and run this again.
Not imported by the server.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import records
from .models import MODELS, Model

DOCUMENT = Path(__file__).with_name("openapi.json")
SECURITY = [{"bearer": []}, {"basic": []}]
ID = {"type": "string", "pattern": "^[0-9a-f]{24}$"}


def _nullable(schema: dict) -> dict:
    kind = schema.get("type")
    if kind is None:
        return {**schema, "anyOf": [{k: v for k, v in schema.items() if k != "description"},
                                    {"type": "null"}]} if "enum" not in schema else \
            {**schema, "enum": [*schema["enum"], None]}
    return {**schema, "type": [kind, "null"]} if isinstance(kind, str) else schema


class Fields:
    """JSON schemas for the fake's field checks, taken from the hand-written end-user and
    company schemas of the document (one definition of "a key", "an email", "not blank")."""

    def __init__(self, doc: dict) -> None:
        enduser = doc["components"]["schemas"]["EndUserInput"]["properties"]
        company = doc["components"]["schemas"]["CompanyInput"]["properties"]
        strip = {"description"}
        self.base = {
            records._object_id: ID,
            records._key: {k: v for k, v in enduser["externalId"].items() if k not in strip},
            records._text: {"type": "string", "maxLength": records.MAX_TEXT_LENGTH},
            records._email: {k: v for k, v in enduser["email"].items() if k not in strip},
            records._bool: {"type": "boolean"},
            records._number: {"type": "number"},
            records._object: {"type": "object"},
        }
        self.not_blank = company["name"]["pattern"]
        for key, schema in list(self.base.items()):  # the plain (non-null) form
            kind = schema.get("type")
            if isinstance(kind, list):
                self.base[key] = {**schema, "type": [k for k in kind if k != "null"][0]}

    def of(self, check, required: bool = False) -> dict:
        if check in self.base:
            schema = dict(self.base[check])
        elif hasattr(check, "item"):
            schema = {"type": "array", "items": self.of(check.item)}
        elif hasattr(check, "schema"):
            schema = dict(check.schema)
        else:  # dates and other text
            schema = {"type": "string", "maxLength": records.MAX_TEXT_LENGTH}
        if required and schema.get("type") == "string" and "pattern" not in schema:
            schema["pattern"] = self.not_blank
        return schema


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _responses(*codes: str, ok: dict | None = None) -> dict:
    named = {"400": "BadRequest", "401": "Unauthorized", "404": "NotFound", "409": "Conflict",
             "413": "TooLarge", "415": "UnsupportedMediaType", "408": "Fault",
             "429": "FaultRetry", "500": "ServerError", "502": "Fault", "503": "FaultRetry",
             "504": "Fault"}
    out = dict(ok or {})
    for code in sorted({*codes, "401", "408", "429", "500", "502", "503", "504"}):
        out[code] = {"$ref": f"#/components/responses/{named[code]}"}
    return dict(sorted(out.items()))


def _ok(description: str, schema: dict, code: str = "200") -> dict:
    return {code: {"description": description,
                   "content": {"application/json": {"schema": schema}}}}


FILTER = {"type": "string", "pattern": "[^ ,]"}
SORT = {"type": "string", "allOf": [{"pattern": "[^ ,]"}, {"pattern": "^-*[^-]"}]}


def _query(name: str, description: str, integer: bool = False, schema: dict | None = None) -> dict:
    schema = schema or ({"type": "integer", "minimum": 0} if integer else FILTER)
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


KEY = {"name": "key", "in": "path", "required": True,
       "description": "A Planhat `_id`, `extid-<externalId>` or `srcid-<sourceId>`; may hold "
                      "'/' (the route takes the rest of the path)",
       "schema": {"type": "string", "minLength": 1}, "example": "extid-e-1"}


def _paging(model_default: int, model_max: int, sortable: bool = True) -> list[dict]:
    params = [_query("limit", f"Page size (default {model_default}, capped at {model_max}); "
                     "a whole number >= 0, else 400", True),
              _query("offset", "Records to skip; a whole number >= 0, else 400", True)]
    if sortable:
        params += [_query("sort", "A field to sort by; `-field` for descending", schema=SORT),
                   _query("select", "Comma-separated fields to return (`_id` always comes "
                          "along)")]
    return params


def input_schema(model: Model, fields: Fields, create: bool) -> dict:
    owner = (f" `{model.company_field}` names the owning company (an `_id`, `extid-…` or "
             "`srcid-…`; 404 when no company matches)." if model.company_field else "")
    needs = f" A new one needs {', '.join(model.required)}." if model.required else ""
    named = {"companies": "companies", "endusers": "end users"}
    links = (" " + "; ".join(f"`{n}` names {named[t]}" for n, t in model.links.items())
             + " (an `_id`, `extid-…` or `srcid-…`; stored as `_id`s; 404 naming the item "
             "when one matches nothing; a deleted record's id leaves them)."
             if model.links else "")
    props = {}
    for name, check in model.checks.items():
        required = name in model.required
        schema = fields.of(check, required)
        props[name] = schema if create and required else _nullable(schema)
    props["_id"] = {"type": "null", "description": "set by the server (400 when sent"
                    + (")" if create else " with another record's _id)")}
    what = "A new" if create else "Fields to change on a"
    schema = {"type": "object",
              "description": f"{what} {model.name}. Null means 'not sent'; unknown fields are "
                             f"stored as sent (nested at most 32 levels).{needs}{owner}{links}",
              "properties": props}
    if create and model.required:
        schema["required"] = list(model.required)
    return schema


def record_schema(model: Model) -> dict:
    props = {"_id": ID, "externalId": {"type": "string"}, "sourceId": {"type": "string"},
             "createDate": {"type": "string", "description": "ISO 8601, UTC"},
             "updatedAt": {"type": "string", "description": "ISO 8601, UTC"}}
    if model.company_field:
        props[model.company_field] = {"type": "string"}
        props["companyName"] = {"type": ["string", "null"]}
    return {"type": "object", "required": ["_id"], "properties": props}


def model_paths(model: Model) -> dict:
    title, plural = model.title, model.path
    name = model.name
    filters = [_query(f, "Same as _id" if f == "id" else
                      f"Comma-separated {f} values (a company key for {f})"
                      if f == model.company_field else f"Comma-separated {f} values")
               for f in model.list_filters]
    filter_note = "; filters AND together, an unknown or empty filter is a 400"
    collection = {
        "get": {"operationId": f"list{title}", "summary": f"List {plural}{filter_note}",
                "tags": ["models"], "security": SECURITY,
                "parameters": _paging(model.default_limit, model.max_limit) + filters,
                "responses": _responses("400", ok=_ok(f"A page of {plural}", {
                    "type": "array", "items": _ref(title)}))},
        "post": {"operationId": f"create{title}", "summary": f"Create a {name}",
                 "tags": ["models"], "security": SECURITY,
                 "requestBody": {"required": True, "description": f"A {name}", "content": {
                     "application/json": {"schema": _ref(f"{title}Create"),
                                          "example": _example(model)}}},
                 "responses": _responses("400", "404", "409", "413", "415",
                                         ok=_ok(f"The {name}", _ref(title)))},
    }
    if model.bulk:
        collection["put"] = {
            "operationId": f"bulkUpsert{title}", "summary": f"Bulk upsert {plural}",
            "tags": ["models"], "security": SECURITY,
            "requestBody": {"required": True, "description": "At most 5,000 rows; each is "
                            "matched by _id (which must exist), sourceId, then externalId",
                            "content": {"application/json": {"schema": {
                                "type": "array", "maxItems": 5000, "items": {},
                                "description": f"Rows shaped like {title}Input (with `_id`, "
                                "sourceId or externalId as the key); a row that does not fit "
                                "is answered in createdErrors/updatedErrors with 206"}}}},
            "responses": _responses("400", "413", "415", ok={
                **_ok("Every row applied", _ref("BulkResult")),
                **_ok("Some rows not applied (createdErrors / updatedErrors)",
                      _ref("BulkResult"), "206")})}
    item = {
        "get": {"operationId": f"get{title}", "summary": f"Get a {name}", "tags": ["models"],
                "security": SECURITY, "parameters": [KEY],
                "responses": _responses("404", ok=_ok(f"The {name}", _ref(title)))},
        "put": {"operationId": f"update{title}", "summary": f"Update a {name}",
                "tags": ["models"], "security": SECURITY, "parameters": [KEY],
                "requestBody": {"required": True, "description": "Fields to change", "content": {
                    "application/json": {"schema": _ref(f"{title}Input")}}},
                "responses": _responses("400", "404", "409", "413", "415",
                                        ok=_ok(f"The {name}", _ref(title)))},
        "delete": {"operationId": f"delete{title}", "summary": f"Delete a {name}",
                   "tags": ["models"], "security": SECURITY, "parameters": [KEY],
                   "responses": _responses("404", ok=_ok("Deleted", _ref("Deleted")))},
    }
    return {f"/{plural}": collection, f"/{plural}/{{key}}": item}


def dimension_paths() -> dict:
    params = _paging(100, 10_000, sortable=False) + [
        _query("cid", "The company (an `_id`, `extid-…` or `srcid-…`)"),
        _query("dimid", "Comma-separated dimension ids"),
        {**_query("from", "First day, in days since 1970"), "schema": {"type": "integer"}},
        {**_query("to", "Last day, in days since 1970"), "schema": {"type": "integer"}},
    ]
    row = {"type": "object", "required": ["_id", "dimensionId", "value", "companyId",
                                          "companyName"],
           "properties": {"_id": ID, "dimensionId": {}, "value": {"type": "number"},
                          "companyId": {"type": ["string", "null"]},
                          "companyName": {"type": ["string", "null"]}}}
    return {"/dimensiondata": {"get": {
        "operationId": "listDimensionData",
        "summary": "Read back what POST /dimensiondata/{token} stored, with its company",
        "tags": ["models"], "security": SECURITY, "parameters": params,
        "responses": _responses("400", ok=_ok("A page of data points", {
            "type": "array", "items": row}))}}}


def company_paths() -> dict:
    """``GET /companies/{key}/<model>``: one company's records (as pyplanhat lists them)."""
    paths = {}
    children = [("endusers", "EndUser", 100, 2_000)] + [
        (m.path, m.title, m.default_limit, m.max_limit) for m in MODELS if m.company_owned]
    for path, title, default, maximum in children:
        paths[f"/companies/{{key}}/{path}"] = {"get": {
            "operationId": f"listCompany{title}", "summary": f"One company's {path}",
            "tags": ["models"], "security": SECURITY,
            "parameters": [{**KEY, "description": "The company: an `_id`, `extid-<externalId>` "
                            "or `srcid-<sourceId>`", "example": "extid-acme"},
                           *_paging(default, maximum)],
            "responses": _responses("400", "404", ok=_ok(f"A page of the company's {path}", {
                "type": "array", "items": _ref(title)}))}}
    return paths


def _example(model: Model) -> dict:
    row = dict(model.example)
    if model.company_owned:
        row[model.company_field] = "extid-acme"
    return {**row, "externalId": "e-1"}


def generated(doc: dict) -> tuple[dict, dict]:
    """(paths, schemas) for every model, a company's records and GET /dimensiondata."""
    fields = Fields(doc)
    paths, schemas = {**dimension_paths(), **company_paths()}, {}
    for model in MODELS:
        paths.update(model_paths(model))
        schemas[model.title] = record_schema(model)
        schemas[f"{model.title}Create"] = input_schema(model, fields, create=True)
        schemas[f"{model.title}Input"] = input_schema(model, fields, create=False)
    return paths, schemas


def merged(doc: dict) -> dict:
    """``doc`` with the generated paths and schemas in place (other entries untouched)."""
    paths, schemas = generated(doc)
    doc = {**doc, "paths": {**doc["paths"], **paths},
           "components": {**doc["components"],
                          "schemas": {**doc["components"]["schemas"], **schemas}}}
    # What the models add to hand-written entries: the state's lists, company delete's 409.
    state = doc["components"]["schemas"]["State"]
    doc["components"]["schemas"]["State"] = {**state, "properties": {
        **state["properties"], **{m.path: {"type": "array", "items": _ref(m.title)}
                                  for m in MODELS}}}
    item = doc["paths"]["/companies/{key}"]
    delete = item["delete"]
    doc["paths"]["/companies/{key}"] = {**item, "delete": {
        **delete, "summary": "Delete a company, its end users and its records of cascading "
                             "models (409 while it has invoices)",
        "responses": dict(sorted({**delete["responses"], "409": {
            "$ref": "#/components/responses/Conflict"}}.items()))}}
    tags = [t for t in doc.get("tags", []) if t["name"] != "models"]
    doc["tags"] = tags + [{"name": "models", "description": "Planhat's other objects, from "
                           "one table of models (mock_planhat/models.py)"}]
    return doc


def main() -> None:
    doc = json.loads(DOCUMENT.read_text("utf-8"))
    DOCUMENT.write_text(json.dumps(merged(doc), indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {DOCUMENT}")


if __name__ == "__main__":
    main()
