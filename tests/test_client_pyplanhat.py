"""A third-party client of Planhat's API (PyPI `pyplanhat`), unchanged apart from its base URL,
against a live fake: companies, end users and conversations, sync and async."""

from __future__ import annotations

import asyncio

import pytest
from pyplanhat import (
    APIError,
    AsyncPyPlanhat,
    Company,
    Conversation,
    EndUser,
    InvalidRequestError,
    PyPlanhat,
)

TOKEN = "mock-api-token"


def test_companies_end_users_and_conversations(live_server):
    with PyPlanhat(api_key=TOKEN, base_url=live_server.url) as client:
        acme = client.companies.create(Company(name="Acme", external_id="acme"))
        assert acme.id and acme.external_id == "acme"
        renamed = client.companies.update(acme.id, Company(name="Acme Inc"))
        assert renamed.name == "Acme Inc"
        assert [c.name for c in client.companies.list()] == ["Acme Inc"]
        assert client.companies.get("extid-acme").id == acme.id

        ada = client.endusers.create(EndUser(email="ada@acme.com", company_id=acme.id,
                                             first_name="Ada"))
        assert ada.company_id == acme.id
        assert client.endusers.update(ada.id, EndUser(last_name="L")).last_name == "L"
        assert [u.email for u in client.endusers.list(company_id=acme.id)] == ["ada@acme.com"]

        call = client.conversations.create(Conversation(
            company_id="extid-acme", type="call", subject="Kick-off", endusers=[ada.id]))
        note = client.conversations.create(Conversation(company_id=acme.id, type="podcast"))
        assert note.type == "note" and call.type == "call"
        assert client.conversations.get(call.id).subject == "Kick-off"
        changed = client.conversations.update(call.id, Conversation(subject="Kick-off 2"))
        assert changed.subject == "Kick-off 2"
        listed = client.conversations.list(company_id=acme.id)
        assert sorted(c.id for c in listed) == sorted([call.id, note.id])
        assert len(client.conversations.list()) == 2

        with pytest.raises(InvalidRequestError) as info:
            client.conversations.create(Conversation(company_id="extid-nobody"))
        assert info.value.status_code == 404 and "companyId" in str(info.value)
        with pytest.raises(APIError) as info:
            client.conversations.create(Conversation(company_id=acme.id, tags=["x" * 70_000]))
        assert info.value.status_code == 400 and "tags[0]" in str(info.value)

        client.conversations.delete(note.id)
        with pytest.raises(InvalidRequestError):
            client.conversations.get(note.id)
        client.endusers.delete(ada.id)
        client.companies.delete(acme.id)
        assert client.companies.list() == [] and client.conversations.list() == []


def test_base_url_from_the_environment_and_the_async_client(live_server, monkeypatch):
    monkeypatch.setenv("PLANHAT_API_BASE_URL", live_server.url)
    monkeypatch.setenv("PLANHAT_API_KEY", TOKEN)

    async def run():
        async with AsyncPyPlanhat() as client:
            acme = await client.companies.create(Company(name="Acme"))
            await client.conversations.create(Conversation(company_id=acme.id, subject="Hi"))
            return await client.conversations.list(company_id=acme.id)

    assert [c.subject for c in asyncio.run(run())] == ["Hi"]
