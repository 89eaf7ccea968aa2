"""Schemathesis against the app in process, through its own OpenAPI document.

Every operation gets generated requests (valid and invalid); every answer must be no 5xx and
must conform to the document (status code, content type, headers, body schema). Runs in the
``fuzz`` tox env (``tox -e fuzz``); skipped where schemathesis is not installed.
``MOCK_PLANHAT_FUZZ_EXAMPLES`` sets the examples per operation (default 30).
"""

from __future__ import annotations

import base64
import os

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mock_planhat import Config, create_app  # noqa: E402
from mock_planhat.app import fake_of  # noqa: E402

AUTH = {"Authorization": "Bearer mock-api-token"}
SEGMENT_AUTH = {"Authorization": "Basic " + base64.b64encode(b"mock-tenant-token:").decode()}
EXAMPLES = int(os.environ.get("MOCK_PLANHAT_FUZZ_EXAMPLES", "30"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]

# A small body limit so that generated bodies also reach the 413 answer now and then.
APP = create_app(Config(max_body=256 * 1024))
schema = schemathesis.openapi.from_wsgi("/__admin/openapi.json", APP)
schema.config.generation.update(max_examples=EXAMPLES)


def _seed(app) -> None:
    """A company, an end user and a pending contact, so that keys sometimes hit records."""
    client = app.test_client()
    client.post("/companies", json={"name": "Acme", "externalId": "acme",
                                    "domains": ["acme.com"]}, headers=AUTH)
    client.post("/endusers", json={"email": "ada@acme.com", "externalId": "u-1"}, headers=AUTH)
    client.post("/endusers", json={"email": "held@nowhere.org"}, headers=AUTH)


_seed(APP)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          database=None)
def test_operation(case):
    try:
        segment = case.path.startswith(("/v1/", "/dock/"))
        case.call_and_validate(headers=SEGMENT_AUTH if segment else AUTH, checks=CHECKS)
    finally:
        # A generated POST /__admin/faults would make later requests answer 5xx or wait.
        fake_of(APP).faults.clear()
