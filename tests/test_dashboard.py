"""The dashboard over HTTP (Flask's test client): pages, escaping, paging, the same-origin
rule for its POST, and that it never lands in the journal. The browser tests drive it in
Chromium (tests/test_browser.py)."""

from __future__ import annotations

import re

import pytest

TENANT = "mock-tenant-token"
XSS = "<img src=x onerror=alert(1)>"
UI = f"/__admin/ui/t/{TENANT}"


@pytest.fixture
def seeded(client, api):
    api.post("/companies", json={"name": "Acme " + XSS, "externalId": "acme",
                                 "domains": ["acme.com"]})
    api.put("/endusers", json=[{"externalId": f"u{i:03d}", "email": f"u{i:03d}@acme.com",
                                "name": f"User {i:03d}"} for i in range(120)]
            + [{"externalId": "evil", "email": "evil@acme.com", "name": XSS},
               {"externalId": "lost", "email": "lost@nowhere.io"}])
    return client


@pytest.mark.parametrize("path", ["/", "/__admin/"])
def test_index_lists_tenants_with_counts(seeded, path):
    response = seeded.get(path)
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    row = re.search(r"<tr>\s*<td><a[^>]*><code>" + TENANT + r"</code>.*?</tr>", html, re.S)
    assert row, html
    assert re.findall(r'class="num">(?:<a[^>]*>)?(\d+)', row.group(0)) == \
        ["1", "121", "1", "0", "0"]


def test_every_value_is_escaped(seeded):
    for path in ("/", f"{UI}/endusers?q=evil", f"{UI}/companies", "/__admin/ui/journal"):
        html = seeded.get(path).get_data(as_text=True)
        assert XSS not in html, path
    html = seeded.get(f"{UI}/endusers?q=evil").get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_records_search_sort_and_page(seeded):
    html = seeded.get(f"{UI}/endusers?sort=-name&limit=10").get_data(as_text=True)
    names = re.findall(r'class="record"[^>]*>([^<]+)</a>', html)
    assert names[:2] == ["User 119", "User 118"] and len(names) == 10
    assert "1–10 of 121" in html and 'rel="next"' in html and 'rel="prev"' not in html
    html = seeded.get(f"{UI}/endusers?sort=-name&limit=10&offset=10").get_data(as_text=True)
    assert re.findall(r'class="record"[^>]*>([^<]+)</a>', html)[0] == "User 109"
    html = seeded.get(f"{UI}/endusers?q=U00").get_data(as_text=True)
    assert "of 10" in html
    html = seeded.get(f"{UI}/endusers?offset=x").get_data(as_text=True)
    assert "offset: &#39;x&#39; is not a whole number" in html
    assert seeded.get(f"{UI}/nothing").status_code == 404
    assert seeded.get("/__admin/ui/t/nope/endusers").status_code == 404


def test_person_page_shows_fields_company_activities_and_decisions(seeded, api):
    seeded.post(f"/analytics/{TENANT}", json={"externalId": "u001", "action": "Logged In"})
    api.put("/endusers", json=[{"externalId": "u001", "firstName": "Una"}])
    uid = api.get("/endusers/extid-u001").get_json()["_id"]
    html = seeded.get(f"{UI}/person/{uid}").get_data(as_text=True)
    assert "User 001" in html and 'id="person-company"' in html
    assert "Logged In" in html
    assert html.count('class="outcome-created"') == 1
    assert html.count('class="outcome-updated"') == 1
    assert seeded.get(f"{UI}/person/nope").status_code == 404


def test_assign_needs_same_origin_post(seeded):
    pid = seeded.get("/__admin/pending").get_json()[0]["_id"]
    url = f"{UI}/pending/{pid}/assign"
    assert seeded.get(url).status_code == 405
    assert seeded.post(url, data={"companyId": "extid-acme"}).status_code == 403
    evil = seeded.post(url, data={"companyId": "extid-acme"},
                       headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403
    assert seeded.get("/__admin/pending").get_json() != []
    bad = seeded.post(url, data={"companyId": "extid-nope"},
                      headers={"Origin": "http://localhost"})
    assert bad.status_code == 400 and "no company matches" in bad.get_data(as_text=True)
    ok = seeded.post(url, data={"companyId": "extid-acme"},
                     headers={"Origin": "http://localhost"})
    assert ok.status_code == 303 and ok.headers["Location"].endswith(f"/person/{pid}")
    assert seeded.get("/__admin/pending").get_json() == []
    story = seeded.get(f"/__admin/explain?id={pid}").get_json()
    assert story["history"][-1]["via"].startswith("dashboard: assign")


def test_journal_page_filters_and_shows_request_and_response(seeded, api):
    api.get("/endusers/extid-none")
    html = seeded.get("/__admin/ui/journal?status=404").get_data(as_text=True)
    assert html.count('<article class="entry') == 1
    assert "no end user matches" in html  # the response body
    bad = seeded.get("/__admin/ui/journal?status=abc")
    assert bad.status_code == 400 and "status:" in bad.get_data(as_text=True)
    html = seeded.get("/__admin/ui/journal?method=PUT").get_data(as_text=True)
    assert html.count('<article class="entry') == 1 and "decisions</summary>" in html


def test_funnel_and_faults_pages(seeded):
    seeded.post("/__admin/faults", json={"status": 503, "path": "/endusers*", "count": 2})
    html = seeded.get("/__admin/ui/faults").get_data(as_text=True)
    assert "/endusers*" in html and "503" in html
    html = seeded.get(f"{UI}/funnel").get_data(as_text=True)
    assert 'data-step="applied"' in html and 'data-reason="no_company"' in html


def test_dashboard_is_not_journaled_and_is_loopback_only(seeded):
    seeded.delete("/__admin/requests")
    seeded.get("/")
    seeded.get(f"{UI}/endusers")
    assert seeded.get("/__admin/requests").get_json()["requests"] == []
    remote = seeded.get("/", environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert remote.status_code == 403


def test_pages_work_without_javascript(seeded):
    """Every link and form is plain HTML: the only script is the journal's live refresh."""
    html = seeded.get("/__admin/ui/journal").get_data(as_text=True)
    assert html.count("<script") == 1 and 'method="get"' in html
    js = seeded.get("/__admin/ui/static/dashboard.js")
    assert js.status_code == 200 and "location.reload" in js.get_data(as_text=True)
    css = seeded.get("/__admin/ui/static/dashboard.css").get_data(as_text=True)
    assert "http" not in css  # nothing from a CDN


def test_a_missing_browser_names_the_packages(monkeypatch):
    """What the browser tests skip (or, under MOCK_PLANHAT_BROWSER_REQUIRED=1, fail) with."""
    from mock_planhat.dashboard.screenshot import NoBrowser, find_browser

    monkeypatch.setenv("MOCK_PLANHAT_CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(NoBrowser, match="apt-get install -y chromium chromium-driver"):
        find_browser()


def test_the_dashboard_stays_out_of_the_servers_start_up():
    """Selenium and the screenshot script are never imported by serving."""
    import subprocess
    import sys

    code = ("import sys; from mock_planhat import create_app; create_app(); "
            "print(sorted(m for m in sys.modules if m.startswith(('selenium', "
            "'mock_planhat.dashboard.screenshot', 'faker', 'mock_planhat.scenario'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
