"""The dashboard in a real browser: headless Chromium (Debian's chromium and chromium-driver)
driven by Selenium, against a live server seeded from scenarios/dashboard_tour.yaml.

Only the ``browser`` tox env collects this folder. Without Chromium these tests skip with a
message naming the packages — unless MOCK_PLANHAT_BROWSER_REQUIRED=1 (CI sets it), where a
missing browser is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mock_planhat import Config, create_app
from mock_planhat.dashboard.screenshot import NoBrowser, chrome, seed
from mock_planhat.scenario import load_scenario, planned_calls
from mock_planhat.server import Server

XSS = "<img src=x onerror=alert(1)>"
TOUR = Path(__file__).resolve().parents[2] / "scenarios" / "dashboard_tour.yaml"


@pytest.fixture(scope="module")
def driver():
    try:
        browser = chrome()
    except NoBrowser as exc:
        if os.environ.get("MOCK_PLANHAT_BROWSER_REQUIRED") == "1":
            pytest.fail(f"MOCK_PLANHAT_BROWSER_REQUIRED=1 but {exc}")
        pytest.skip(str(exc))
    browser.implicitly_wait(2)
    yield browser
    browser.quit()


@pytest.fixture(scope="module")
def site():
    server = Server(create_app(Config()), "127.0.0.1", 0).start()
    tenant = seed(server.url, TOUR)
    yield server.url, tenant["tenantToken"]
    server.stop()


def _by(driver, css):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def _go(driver, element) -> None:
    """Click a link or button and wait until the browser has left the page."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element("tag name", "html")
    element.click()
    WebDriverWait(driver, 10).until(expected_conditions.staleness_of(page))


def _all(driver, css):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, css)


def test_follow_a_generated_user_from_the_list_to_the_person_page(driver, site):
    url, token = site
    driver.get(url + "/")
    row = next(r for r in _all(driver, "#tenants tbody tr") if token in r.text)
    assert [c.text for c in row.find_elements("css selector", "td.num")][:3] == ["4", "40", "2"]
    _go(driver, row.find_element("link text", "40"))
    assert driver.find_element("tag name", "h1").text == "End users (40)"
    _by(driver, "input[name=q]").send_keys("people-0007")
    _go(driver, _by(driver, "form.filters button"))
    links = _all(driver, "#records a.record")
    assert len(links) == 1
    name = links[0].text
    _go(driver, links[0])
    assert _by(driver, "#person-name").text == name
    assert _by(driver, "#person-company").text  # the generated company
    assert '"externalId": "people-0007"' in _by(driver, "#fields").text
    assert len(_all(driver, "#activities li")) == 4  # track: 3, page: 1
    outcomes = [c.text for c in _all(driver, "table.history td:nth-child(4) strong")]
    assert outcomes and outcomes[0] == "created" and set(outcomes) <= {"created", "updated",
                                                                       "nonupdate"}


def test_filter_the_journal(driver, site):
    url, token = site
    driver.get(url + "/__admin/ui/journal")
    _by(driver, "input[name=path]").send_keys("/v1/*")
    _go(driver, _by(driver, "#journal-filters button"))
    entries = _all(driver, "article.entry")
    assert entries and all("/v1/batch" in e.find_element("css selector", ".path").text
                           for e in entries)
    first = entries[0]
    batch_id = first.get_attribute("id").removeprefix("entry-")
    assert '"success": true' in first.find_element("css selector", "pre.response").text
    caused = [a.text.lstrip("#") for a in first.find_elements("css selector", "p.link a")]
    assert caused
    # each caused Planhat request names the batch back
    driver.get(url + f"/__admin/ui/journal?tenant={token}&limit=1000")
    for entry_id in caused:
        entry = _by(driver, f"#entry-{entry_id}")
        assert entry.find_element("css selector", "p.link").text == f"caused by #{batch_id}"
    _by(driver, "input[name=status]").send_keys("abc")
    _go(driver, _by(driver, "#journal-filters button"))
    assert "status:" in _by(driver, "p.error").text


def test_read_the_funnel(driver, site):
    url, token = site
    driver.get(url + f"/__admin/ui/t/{token}/funnel")
    steps = {s.get_attribute("data-step"): s for s in _all(driver, "#funnel > li")}
    count = {name: int(s.find_element("css selector", "h3 .count").text)
             for name, s in steps.items()}
    assert count["received"] == len(planned_calls(load_scenario(TOUR))) + 1
    assert count["held"] == 2
    skipped = steps["skipped"].find_element("css selector", "[data-reason=no_user_anon_id]")
    assert skipped.find_element("css selector", ".count").text == "1"
    skipped.find_element("tag name", "summary").click()
    assert "Orphan event" in skipped.find_element("tag name", "pre").text


def test_assign_a_pending_contact(driver, site):
    url, token = site
    driver.get(url + f"/__admin/ui/t/{token}/pending")
    _go(driver, driver.find_element("link text", "Wally Walk-in"))
    assert "pending contact" in _by(driver, "span.badge").text
    driver.get(url + f"/__admin/ui/t/{token}/companies")
    company = _all(driver, "#records a.record")[0]
    company_name = company.text
    _go(driver, company)
    cid = driver.current_url.rsplit("/", 1)[1]
    driver.get(url + f"/__admin/ui/t/{token}/pending?q=walk")
    _go(driver, driver.find_element("link text", "Wally Walk-in"))
    _by(driver, "#assign input[name=companyId]").send_keys(cid)
    _go(driver, _by(driver, "#assign button"))
    assert "end user" == _by(driver, "span.badge").text
    assert _by(driver, "#person-company").text == company_name
    assert "dashboard: assign" in _by(driver, "table.history").text
    driver.get(url + f"/__admin/ui/t/{token}/pending")
    assert driver.find_element("tag name", "h1").text == "Pending contacts (1)"


def test_markup_in_a_name_renders_as_text(driver, site):
    url, token = site
    driver.get(url + f"/__admin/ui/t/{token}/pending?q=markup")
    link = _by(driver, "#records a.record")
    assert link.text == XSS
    assert _all(driver, "#records img") == []
    _go(driver, link)
    assert _by(driver, "#person-name").text == XSS
    assert _all(driver, "img") == []
    driver.get(url + "/__admin/ui/journal?path=/v1/batch&limit=1000")
    assert any(XSS in pre.text for pre in _all(driver, "pre.request"))
    assert _all(driver, "img") == []
