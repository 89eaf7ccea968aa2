"""Generated users: Faker people at generated companies, and the calls each one makes.

Faker is imported here, lazily, so nothing the server imports pays for it. Every value comes
from the ``random.Random`` the caller passes (Faker is seeded from it), so a seed fixes all.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import NamedTuple

DEFAULT_EVENTS = ("Signed Up", "Order Completed", "Feature Used", "Report Exported",
                  "Invite Sent", "Plan Upgraded")
DEFAULT_PAGES = ("Home", "Pricing", "Dashboard", "Settings", "Docs", "Billing")
PLANS = ("free", "starter", "pro", "enterprise")
INDUSTRIES = ("Software", "Retail", "Finance", "Healthcare", "Education", "Logistics")


@dataclass(frozen=True)
class Company:
    id: str
    name: str
    domain: str
    industry: str
    employees: int


@dataclass(frozen=True)
class User:
    index: int
    userId: str  # noqa: N815 - Segment's name
    firstName: str  # noqa: N815
    lastName: str  # noqa: N815
    email: str
    title: str
    company: Company

    @property
    def name(self) -> str:
        return f"{self.firstName} {self.lastName}"

    def member(self) -> Member:
        """What the plan keeps of this user once its calls are made."""
        return Member(self.index, self.userId, self.email)


class Member(NamedTuple):
    """A generated user whose calls were made: what references to it (``@users[3]``,
    audiences, ``email`` finders) read. Keeping the whole Faker user for each of 100,000
    users cost the runner ~0.3 KiB a user."""

    index: int
    userId: str  # noqa: N815 - Segment's name
    email: str


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower()) or "x"


def _count(spec, rng: random.Random) -> int:
    if isinstance(spec, dict):
        return rng.randint(spec["min"], spec["max"])
    return int(spec)


def generate(spec: dict, rng: random.Random) -> tuple[list[User], list[Company]]:
    """The users (and their companies) of one ``generate`` step."""
    from faker import Faker  # lazy: Faker is slow to import

    name = spec.get("name", "users")
    prefix = spec.get("idPrefix", f"{name}-")
    faker = Faker("en_US")
    faker.seed_instance(rng.getrandbits(64))
    companies: list[Company] = []
    domains: set[str] = set()
    for i in range(spec.get("companies", 5)):
        company_name = faker.company()
        domain = _slug(company_name.split()[0].rstrip(","))
        while domain + ".com" in domains:
            domain += str(i)
        domains.add(domain + ".com")
        companies.append(Company(f"{prefix}company-{i + 1}", company_name, domain + ".com",
                                 rng.choice(INDUSTRIES), rng.randint(5, 5000)))
    users: list[User] = []
    emails: set[str] = set()
    width = max(4, len(str(spec["count"])))
    for i in range(spec["count"]):
        first, last = faker.first_name(), faker.last_name()
        company = companies[rng.randrange(len(companies))]
        local = f"{_slug(first)}.{_slug(last)}"
        email = f"{local}@{company.domain}"
        if email in emails:
            email = f"{local}{i}@{company.domain}"
        emails.add(email)
        users.append(User(i, f"{prefix}{i:0{width}d}", first, last, email, faker.job(), company))
    return users, companies


def user_calls(user: User, spec: dict, rng: random.Random) -> list[dict]:
    """The calls one generated user makes: identify, group, then tracks and pages mixed."""
    calls: list[dict] = []
    if spec.get("identify", True):
        calls.append({"type": "identify", "userId": user.userId, "traits": {
            "email": user.email, "firstName": user.firstName, "lastName": user.lastName,
            "name": user.name, "title": user.title,
            "company": {"id": user.company.id, "name": user.company.name},
            "plan": rng.choice(PLANS)}})
    if spec.get("group", True):
        company = user.company
        calls.append({"type": "group", "userId": user.userId, "groupId": company.id, "traits": {
            "name": company.name, "website": f"https://{company.domain}",
            "industry": company.industry, "employees": company.employees}})
    events = list(spec.get("events") or DEFAULT_EVENTS)
    pages = list(spec.get("pages") or DEFAULT_PAGES)
    activity: list[dict] = []
    for _ in range(_count(spec.get("track", 2), rng)):
        event = rng.choice(events)
        activity.append({"type": "track", "userId": user.userId, "event": event,
                         "properties": {"plan": rng.choice(PLANS),
                                        "value": round(rng.uniform(1, 500), 2)},
                         "context": {"traits": {"email": user.email}}})
    for _ in range(_count(spec.get("page", 1), rng)):
        page = rng.choice(pages)
        path = "/" + _slug(page)
        activity.append({"type": "page", "userId": user.userId, "name": page, "properties": {
            "path": path, "url": f"https://app.example.com{path}", "title": page,
            "referrer": None, "search": ""}})
    rng.shuffle(activity)
    return calls + activity
