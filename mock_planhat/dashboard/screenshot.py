"""Seed a fake from a scenario file and take a screenshot of the dashboard in headless Chromium.

    python -m mock_planhat.dashboard.screenshot                # writes docs/dashboard.png
                                                               # (run from the project's folder)
    python -m mock_planhat.dashboard.screenshot --page journal --out /tmp/journal.png

Needs Selenium (``pip install -e '.[browser]'``) and Debian's ``chromium`` and
``chromium-driver`` packages. The browser tests use :func:`seed` and :func:`chrome` from
here too. Nothing in this module is imported by the server.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import urllib.request
from pathlib import Path

TOUR = Path("scenarios") / "dashboard_tour.yaml"  # from the project's folder
PACKAGES = "chromium and chromium-driver (apt-get install -y chromium chromium-driver)"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver",)


class NoBrowser(RuntimeError):
    pass


def _post(url: str, body) -> dict:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our server
        return json.loads(response.read())


def seed(base_url: str, scenario: Path = TOUR) -> dict:
    """A new tenant filled with the scenario's Segment calls, sent to ``/v1/batch`` (so the
    journal links each batch to its Planhat requests and the funnel counts them), plus one
    call with neither userId nor anonymousId. Returns the tenant's tokens."""
    from ..scenario import load_scenario, planned_calls

    tenant = _post(f"{base_url}/__admin/tenants", {})
    calls = list(planned_calls(load_scenario(scenario)))
    calls.append({"type": "track", "event": "Orphan event"})
    for start in range(0, len(calls), 200):
        _post(f"{base_url}/v1/batch", {"writeKey": tenant["tenantToken"],
                                       "batch": calls[start:start + 200]})
    return tenant


def find_browser() -> tuple[str, str]:
    """(chromium, chromedriver) paths; NoBrowser names the packages when either is missing."""
    browser = os.environ.get("MOCK_PLANHAT_CHROMIUM") or next(
        (p for p in map(shutil.which, BROWSERS) if p), None)
    driver = os.environ.get("MOCK_PLANHAT_CHROMEDRIVER") or next(
        (p for p in map(shutil.which, DRIVERS) if p), None)
    if not (browser and os.path.exists(browser)) or not (driver and os.path.exists(driver)):
        raise NoBrowser(f"no Chromium found (browser: {browser}, driver: {driver}); install "
                        f"Debian's {PACKAGES}")
    try:
        import selenium  # noqa: F401
    except ImportError:
        raise NoBrowser("Selenium is not installed: pip install -e '.[browser]'") from None
    return browser, driver


def chrome(width: int = 1400, height: int = 1000):
    """A headless Chromium driven by Selenium (Debian's chromium and chromedriver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--disable-extensions"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


PAGES = {"endusers": "/__admin/ui/t/{t}/endusers?sort=name", "journal": "/__admin/ui/journal",
         "funnel": "/__admin/ui/t/{t}/funnel", "tenants": "/",
         "person": "/__admin/ui/t/{t}/person/{person}"}
PERSON = "walk-in"  # the tour's pending contact: held, with its near miss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mock_planhat.dashboard.screenshot",
        description="Seed an in-process-served fake from a scenario and save a PNG of a "
                    "dashboard page (headless Chromium).")
    parser.add_argument("--out", default="docs/dashboard.png",
                        help="PNG to write (default: docs/dashboard.png)")
    parser.add_argument("--page", choices=sorted(PAGES), default="person",
                        help=f"which page (default: person, the contact {PERSON!r})")
    parser.add_argument("--scenario", default=str(TOUR), help="scenario file to seed from")
    args = parser.parse_args(argv)
    from .. import Config, create_app
    from ..server import Server

    if not Path(args.scenario).is_file():
        print(f"screenshot: error: {args.scenario}: no such scenario file (run it from the "
              "project's folder, or pass --scenario)", file=sys.stderr)
        return 2
    try:
        driver = chrome()
    except NoBrowser as exc:
        print(f"screenshot: error: {exc}", file=sys.stderr)
        return 2
    server = Server(create_app(Config()), "127.0.0.1", 0).start()
    try:
        tenant = seed(server.url, Path(args.scenario))
        token = tenant["tenantToken"]
        with urllib.request.urlopen(f"{server.url}/__admin/explain?externalId={PERSON}"  # noqa: S310
                                    f"&tenant={token}", timeout=30) as response:
            found = json.loads(response.read())["found"]
        person = found[0]["record"]["_id"] if found else "none"
        driver.get(server.url + PAGES[args.page].format(t=token, person=person))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(args.out)
    finally:
        driver.quit()
        server.stop()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
