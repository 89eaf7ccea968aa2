"""The benchmark's Segment traffic: companies, then users who identify, act and join an audience.

Generated once with a seeded Faker, outside every timed section. Per user: one identify (with
the company's id in ``traits.company_id``, so the end user is created, not held), five events
(three tracks, two pages) and one Engage audience sync (an identify carrying
``context.personas``). Companies arrive first as group calls without a user.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

EVENTS = ("Signed Up", "Feature Used", "Report Exported", "Invite Sent", "Plan Upgraded")
PAGES = ("Home", "Pricing", "Dashboard", "Settings", "Docs")
PLANS = ("free", "starter", "pro", "enterprise")
AUDIENCE = "power_users"
LIBRARY = {"name": "analytics-python", "version": "2.3.2"}


@dataclass
class Traffic:
    companies: list[dict]  # group calls
    users: list[list[dict]]  # per user: identify, 5 events, audience sync

    def calls(self, users: slice = slice(None)) -> list[dict]:
        """Group calls (when the slice starts at the first user), then each user's calls."""
        chosen = self.users[users]
        head = self.companies if (users.start or 0) == 0 else []
        return head + [call for user_calls in chosen for call in user_calls]

    @property
    def call_count(self) -> int:
        return len(self.companies) + sum(len(u) for u in self.users)


def generate(users: int = 10_000, companies: int = 200, seed: int = 20240601) -> Traffic:
    from faker import Faker  # only the benchmark pays for Faker

    rng = random.Random(seed)
    faker = Faker("en_US")
    faker.seed_instance(seed)
    stamp = "2024-06-01T12:00:00.000Z"
    group_calls = []
    for i in range(companies):
        group_calls.append({
            "type": "group", "groupId": f"co-{i}", "messageId": f"m-co-{i}",
            "anonymousId": f"anon-co-{i}", "timestamp": stamp,
            "traits": {"name": faker.company(), "industry": faker.bs(), "employees": rng.randint(5, 5000),
                       "plan": rng.choice(PLANS)},
            "context": {"library": LIBRARY},
        })
    per_user = []
    for i in range(users):
        first, last = faker.first_name(), faker.last_name()
        user_id = f"user-{i}"
        company = f"co-{rng.randrange(companies)}"
        email = f"{first.lower()}.{last.lower()}.{i}@example{i % 97}.com"
        context = {"library": LIBRARY, "ip": faker.ipv4(), "groupId": company}
        calls = [{
            "type": "identify", "userId": user_id, "messageId": f"m-{i}-0", "timestamp": stamp,
            "traits": {"email": email, "firstName": first, "lastName": last,
                       "title": faker.job(), "company_id": company, "plan": rng.choice(PLANS),
                       "logins": rng.randint(0, 500)},
            "context": context,
        }]
        for n in range(1, 6):
            if n % 2:
                calls.append({
                    "type": "track", "userId": user_id, "messageId": f"m-{i}-{n}",
                    "event": rng.choice(EVENTS), "timestamp": stamp, "context": context,
                    "properties": {"plan": rng.choice(PLANS), "value": rng.randint(1, 100)},
                })
            else:
                page = rng.choice(PAGES)
                calls.append({
                    "type": "page", "userId": user_id, "messageId": f"m-{i}-{n}",
                    "name": page, "timestamp": stamp, "context": context,
                    "properties": {"path": f"/{page.lower()}", "referrer": "https://example.com/"},
                })
        calls.append({
            "type": "identify", "userId": user_id, "messageId": f"m-{i}-6", "timestamp": stamp,
            "traits": {AUDIENCE: True},
            "context": {"library": {"name": "unknown", "version": "unknown"},
                        "personas": {"computation_class": "audience",
                                     "computation_key": AUDIENCE,
                                     "computation_id": "aud_1"}},
        })
        per_user.append(calls)
    return Traffic(group_calls, per_user)
