"""Schemathesis against the app in process, through its own OpenAPI document.

Every check Schemathesis has (its CLI's ``--checks all``: no 5xx, status codes, content types,
headers and bodies true to the document, negative data rejected and positive data accepted,
auth enforced, undocumented methods refused, deleted resources gone, ...) runs on every
answer, in two phases: each operation on its own, then the stateful phase, which chains
operations through the links the document declares (create a company, then read, update and
delete it).

Only the ``fuzz`` tox env collects this folder (``testpaths`` leaves it out of the default
run), and it imports Schemathesis plainly: without it the env fails instead of passing with no
fuzzing. ``MOCK_PLANHAT_FUZZ_EXAMPLES`` sets the examples per operation (default 30) and
``MOCK_PLANHAT_FUZZ_STEPS`` the stateful scenarios (default 60).
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from mock_planhat import Config, create_app
from mock_planhat.app import fake_of
from mock_planhat.tenants import Registry

AUTH = {"Authorization": "Bearer mock-api-token"}
EXAMPLES = int(os.environ.get("MOCK_PLANHAT_FUZZ_EXAMPLES", "30"))
SCENARIOS = int(os.environ.get("MOCK_PLANHAT_FUZZ_STEPS", "60"))

# The default body limit: a body over it is refused whatever the schema says (413), which
# Schemathesis would count against the document; tests/test_bad_input.py covers the 413s.
APP = create_app(Config())
# The tokens go by the document's security schemes, so that Schemathesis knows them for what
# they are (its auth check sends each request again without them, and expects a 401).
# The tracking paths are data sinks, as Planhat's: a body the document calls invalid (not JSON,
# not the shape) is answered 200 and written to the report as invalid_json / invalid_body, so
# there "rejected" is a 200 (tests/test_tracking.py checks the report entries).
CONFIG = SchemathesisConfig.from_dict({"auth": {"openapi": {
    "bearer": {"bearer": "mock-api-token"},
    "tenantBasic": {"username": "mock-tenant-token", "password": ""},
}}, "operations": [
    {"include-path-regex": "^/(analytics|dimensiondata)/", "checks": {
        "negative_data_rejection": {"expected-statuses": ["200", "400", "413"]}}},
    # explain takes exactly one of externalId, email, id: OpenAPI cannot say "one of these
    # query parameters", so a request with none (or two) is schema-valid and still a 400.
    {"include-path": "/__admin/explain",
     "checks": {"positive_data_acceptance": {"enabled": False}}},
    # A snapshot or clock change the document's shape allows can still be refused: ids used
    # twice, an end user's company missing, a time past 9999 (tests/test_snapshot.py); and
    # ?tenant= may name no tenant (404).
    {"include-path-regex": "^/__admin/(snapshot|clock)$", "checks": {
        "positive_data_acceptance": {"expected-statuses": ["200", "400", "404"]}}},
]})
schema = schemathesis.openapi.from_wsgi("/__admin/openapi.json", APP, config=CONFIG)
schema.config.generation.update(max_examples=EXAMPLES)


def _seed(app) -> None:
    """A company, an end user and a pending contact, so that keys sometimes hit records."""
    client = app.test_client()
    client.post("/companies", json={"name": "Acme", "externalId": "acme",
                                    "domains": ["acme.com"]}, headers=AUTH)
    client.post("/endusers", json={"email": "ada@acme.com", "externalId": "u-1"}, headers=AUTH)
    client.post("/endusers", json={"email": "held@nowhere.org"}, headers=AUTH)


_seed(APP)


def _no_faults() -> None:
    """A generated POST /__admin/faults would make later requests answer 5xx or wait."""
    fake_of(APP).faults.clear()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          database=None)
def test_operation(case):
    try:
        case.call_and_validate()  # every check
    finally:
        _no_faults()


class Workflow(schema.as_state_machine()):
    def setup(self):
        """Each scenario starts from the same state, so that Hypothesis can replay one (the
        bundles of a scenario depend on what the app answered)."""
        fake = fake_of(APP)
        fake.registry = Registry(fake.config)
        fake.journal.clear()
        _no_faults()
        _seed(APP)

    def teardown(self):
        _no_faults()


def test_stateful():
    Workflow.run(settings=settings(max_examples=SCENARIOS, stateful_step_count=6,
                                   deadline=None, database=None,
                                   suppress_health_check=list(HealthCheck)))
