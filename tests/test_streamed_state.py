"""`GET /__admin/state` and `GET /__admin/snapshot` are streamed record by record, and say
exactly what the whole JSON text said."""

from __future__ import annotations

import json

import pytest
import requests
from conftest import API, TENANT
from flask import jsonify

from mock_planhat import snapshot
from mock_planhat.app import fake_of


@pytest.fixture
def filled(live_server):
    """A live fake whose default tenant holds enough records for many chunks, with markup,
    non-ASCII text, nested custom fields and a second tenant."""
    url = live_server.url
    rows = [{"externalId": f"u{i}", "email": f"user{i}@acme.com", "name": f"Zoë <b>{i}</b>",
             "companyExternalId": "acme", "custom": {"deep": {"list": [i, "é", None, 1.5]}}}
            for i in range(1500)]
    assert requests.post(url + "/companies", headers=API, timeout=10, json={
        "name": "Acme \u2028 \"quoted\"", "externalId": "acme", "domains": ["acme.com"]}
    ).status_code == 200
    assert requests.put(url + "/endusers", headers=API, json=rows, timeout=60).status_code == 200
    requests.post(f"{url}/analytics/{TENANT}", json={"action": "Opened", "externalId": "u1"},
                  timeout=10)
    requests.post(url + "/v1/track", json={"writeKey": TENANT, "userId": "ghost",
                                           "event": "x"}, timeout=10)  # a report entry
    requests.post(url + "/__admin/tenants", json={"tenantToken": "other-t",
                                                  "apiToken": "other-a"}, timeout=10)
    return live_server


def _whole(server, build) -> bytes:
    """What the old, whole-text answer was: ``jsonify`` of the same document."""
    app = server.app
    with app.app_context():
        return jsonify(build(fake_of(app))).get_data()


def _streamed(url: str) -> requests.Response:
    answer = requests.get(url, timeout=60, stream=True)
    assert answer.status_code == 200
    assert answer.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in answer.headers
    assert answer.headers["Content-Type"] == "application/json"
    chunks = list(answer.iter_content(chunk_size=None))
    answer._content = b"".join(chunks)
    assert len(chunks) > 1
    return answer


def test_the_state_is_streamed_and_byte_identical_to_the_whole_text(filled):
    answer = _streamed(filled.url + "/__admin/state")
    old = _whole(filled, lambda fake: fake.registry.default.snapshot())
    assert answer.content == old
    doc = json.loads(answer.content)
    assert doc == json.loads(old)
    assert len(doc["endusers"]) == 1500 and doc["companies"][0]["name"].startswith("Acme")
    assert doc["reportCounts"] and doc["activities"]
    other = requests.get(filled.url + "/__admin/state?tenant=other-t", timeout=10)
    assert other.json()["tenant"] == "other-t" and other.json()["endusers"] == []


def test_the_snapshot_is_streamed_byte_identical_and_restores(filled):
    for query, build in (("?tenant=" + TENANT,
                          lambda fake: snapshot.dump([fake.registry.default])),
                         ("", lambda fake: snapshot.dump_all(fake.registry))):
        answer = _streamed(filled.url + "/__admin/snapshot" + query)
        doc = json.loads(answer.content)
        old = json.loads(_whole(filled, build))
        assert doc.pop("savedAt") and old.pop("savedAt")  # a time: the rest is identical
        assert doc == old
        assert json.dumps(doc, separators=(",", ":")) == json.dumps(old, separators=(",", ":"))
    assert requests.put(filled.url + "/__admin/snapshot", data=answer.content, timeout=60,
                        headers={"Content-Type": "application/json"}).status_code == 200
    assert len(requests.get(filled.url + "/__admin/state", timeout=60).json()["endusers"]) == 1500
