"""A third-party client of Planhat's API (PyPI `planhat`), unchanged, against the fake."""

from __future__ import annotations

from planhat import Planhat


def test_planhat_client_lists_companies_and_contacts(live_server):
    client = Planhat(live_server.url, "mock-tenant-token", "mock-api-token")
    session = client._session
    company = session.post(live_server.url + "/companies",
                           json={"name": "Acme", "externalId": "acme"}).json()
    session.put(live_server.url + "/endusers", json=[
        {"externalId": "u1", "email": "a@acme.com", "companyId": "extid-acme"},
        {"externalId": "u2", "email": "b@acme.com", "companyId": "extid-acme"}])
    assert [c["name"] for c in client.get_companies()] == ["Acme"]
    contacts = client.get_contacts(company_id=company["_id"])
    assert sorted(c["externalId"] for c in contacts) == ["u1", "u2"]
    assert len(client.get_contacts()) == 2
