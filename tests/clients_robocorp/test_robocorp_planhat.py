"""`robocorp-planhat` (PyPI), unchanged apart from its API host, against a live fake: its generic
`create_object` / `get_objects` / `get_object_by_id` / `update_object` / `update_objects` /
`delete_planhat_object` across every model type it has that the fake's table holds.

It installs a module named `planhat`, as the PyPI `planhat` package does: only the
`clients-robocorp` tox env collects this folder (pyproject's norecursedirs leaves it out of the
default run), and it imports the client plainly, so a missing client fails the env.
"""

from __future__ import annotations

import pytest
from planhat import Planhat, types
from planhat.errors import PlanhatHTTPError, PlanhatNotFoundError

from mock_planhat.models import MODELS

TOKEN = "mock-api-token"


def _all_types(cls) -> set[type]:
    return set(cls.__subclasses__()).union(t for s in cls.__subclasses__() for t in _all_types(s))


TYPES = {t.API_NAME: t for t in _all_types(types.PlanhatObject)
         if t.API_NAME and t is not types.Note}
COVERED = [m for m in MODELS if m.path in TYPES]


@pytest.fixture
def client(live_server):  # tests/conftest.py's live server
    client = Planhat(api_key=TOKEN, use_caching=False)
    client.session._api_host = live_server.url  # the only change: where "api.planhat.com" is
    return client


@pytest.fixture
def acme(client):
    return client.create_object(types.Company({"name": "Acme", "externalId": "acme"}))


def test_the_client_covers_the_fakes_models():
    assert len(COVERED) >= 15, sorted(TYPES)


@pytest.mark.parametrize("model", COVERED, ids=[m.path for m in COVERED])
def test_generic_operations(client, acme, model):
    kind = TYPES[model.path]
    row = {**model.example, **{k: "x" for k in model.required if k not in model.example}}
    if model.company_owned:
        row[model.company_field] = acme.id
    made = client.create_object(kind({**row, "externalId": "e-1"}))
    assert isinstance(made, kind) and len(made.id) == 24 and made.external_id == "e-1"
    if model.company_owned:
        assert made.company_id == acme.id and made.company_name == "Acme"

    found = client.get_objects(kind)
    assert [o.id for o in found] == [made.id]
    if model.company_owned:
        assert [o.id for o in client.get_objects(kind, company_ids=[acme.id])] == [made.id]
    assert client.get_object_by_id(kind, made.id) == made
    by_ext = client.get_object_by_id(kind, "e-1", types.PlanhatIdType.EXTERNAL_ID)
    assert by_ext.id == made.id

    made["custom"] = {"tier": "gold"}
    updated = client.update_object(made)
    assert updated["custom"] == {"tier": "gold"}

    batch = types.PlanhatObjectList([kind({**row, "externalId": "e-2"}),
                                     kind({"_id": made.id, "custom": {"tier": "silver"}})])
    if model.bulk:
        result = client.update_objects(batch)
        assert result["created"] == 1 and result["updated"] == 1, result
        assert client.get_object_by_id(kind, made.id)["custom"] == {"tier": "silver"}
    else:  # custom fields take no bulk upsert: 405, which the client raises
        with pytest.raises(PlanhatHTTPError, match="not allowed"):
            client.update_objects(batch)
        client.create_object(batch[0])
    assert len(client.get_objects(kind)) == 2

    client.delete_planhat_object(made)
    with pytest.raises(PlanhatNotFoundError):
        client.get_object_by_id(kind, made.id)
    assert len(client.get_objects(kind)) == 1


def test_a_missing_company_is_an_error_the_client_raises(client):
    with pytest.raises(PlanhatHTTPError):
        client.create_object(types.Task({"mainType": "task", "companyId": "extid-nobody"}))
