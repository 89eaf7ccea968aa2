"""Running scenarios: a fresh tenant, the ``given`` records, then each step in order.

Segment calls go through the translator's :class:`~translator.Destination`, to an in-process
fake over WSGI (the default) or to a running one over HTTP (``url=``). The admin API does the
rest (tenants, faults, state, report), so both targets behave the same.

The destination delivers the way the scenario's ``settings.delivery`` says (``rest``, the
default here, or ``dock``); ``run_scenario(..., delivery=…)`` overrides it. The destination's
own skips (``filtered``, ``alias_conflict``, …: the ones no Planhat answer recorded) are written
to the tenant's report, as the fake's Segment routes do, so ``report:`` and ``delivered:``
agree.

The tenant's test clock is set (``POST /__admin/clock``), and the destination's back-off
advances it instead of sleeping: rate limits read that clock, so riding out a
``Retry-After`` takes no wall-clock time, in process and over HTTP alike.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from translator.settings import DELIVERY_MODES

from ..models import TABLE
from .assertions import Mismatch, check
from .load import SAVED_REF, TENANT_TOKEN, Scenario, ScenarioError, load_scenario
from .plan import DEFAULT_CLOCK, iter_plan

IN_PROCESS_BASE = "http://mock-planhat.local"
SEND_CHUNK = 5_000  # calls sent at once: the runner holds a chunk, never a whole generate step
SKIP_SOURCE = "destination"  # the report's source for the destination's own skips
GIVEN_RETRIES = 10
REPORT_CHUNK_BYTES = 4 * 1024 * 1024


def _seconds(retry_after: str | None) -> float:
    """A ``Retry-After`` in seconds (1 when absent or not a number), at most a minute."""
    try:
        seconds = float(retry_after or 1)
    except ValueError:
        return 1.0
    return min(max(seconds, 0.0), 60.0) if math.isfinite(seconds) else 1.0


def _check_delivery(delivery: str) -> None:
    """A delivery mode the translator knows (``rest``, ``dock``), else ValueError."""
    if delivery not in DELIVERY_MODES:
        raise ValueError(f"delivery: {delivery!r} is not one of {', '.join(DELIVERY_MODES)}")


class AdminError(RuntimeError):
    pass


class Target:
    """Where the fake is: ``Target()`` = a new in-process app, ``Target(url=...)`` = a server,
    ``Target(app=...)`` = an app you already have."""

    def __init__(self, url: str | None = None, app=None):
        from translator import HttpTransport, WsgiTransport

        if url:
            self.base = url.rstrip("/")
            self.app = None
            self.transport = HttpTransport()
        else:
            if app is None:
                from mock_planhat import Config, create_app

                app = create_app(Config(journal_size=100_000,  # nobody records a run
                                        journal_bytes=128 * 1024 * 1024, recording_bytes=0))
            self.app = app
            self.base = IN_PROCESS_BASE
            self.transport = WsgiTransport(app)

    def request(self, method: str, path: str, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        return self.transport.request(method, self.base + path, data, hdrs)

    def admin(self, method: str, path: str, body=None, tenant: str | None = None):
        query = f"?tenant={quote(tenant, safe='')}" if tenant else ""
        response = self.request(method, "/__admin" + path + query, body)
        if not 200 <= response.status < 300:
            raise AdminError(f"{method} /__admin{path}: {response.status} {response.text[:300]}")
        return response.json()

    def new_tenant(self, unassigned: str | None = None, tenant_token: str | None = None,
                   api_token: str | None = None, email_match: str | None = None,
                   delivery: str = "rest", rate_limit: str | None = None) -> TenantHandle:
        """A fresh tenant; ``delivery`` is how its destinations deliver (``rest``/``dock``)."""
        _check_delivery(delivery)
        body = {k: v for k, v in (("unassigned", unassigned), ("tenantToken", tenant_token),
                                  ("apiToken", api_token), ("emailMatch", email_match),
                                  ("rateLimit", rate_limit)) if v is not None}
        made = self.admin("POST", "/tenants", body)
        return TenantHandle(self, made["tenantToken"], made["apiToken"], delivery)

    def close(self) -> None:
        self.transport.close()

    def __repr__(self) -> str:
        return f"<Target {self.base}{' (in process)' if self.app is not None else ''}>"


@dataclass
class TenantHandle:
    """One tenant of a fake, and what a test wants from it."""

    target: Target
    tenant_token: str
    api_token: str
    delivery: str = "rest"

    def __repr__(self) -> str:
        where = " (in process)" if self.target.app is not None else ""
        return f"<TenantHandle {self.url}{where} tenant_token={self.tenant_token!r}>"

    @property
    def url(self) -> str:
        return self.target.base

    def settings(self, subdomain: str = "api", delivery: str | None = None) -> dict:
        """Destination settings for this tenant. ``dock`` delivery gets the seed's settings
        only (tenant token, subdomain), as Segment's cloud has them."""
        delivery = delivery or self.delivery
        out = {"tenant_token": self.tenant_token, "subdomain": subdomain,
               "api_url": self.url, "analytics_url": self.url, "delivery": delivery}
        if delivery == "rest":
            out["api_token"] = self.api_token
        return out

    def destination(self, seed: int = 0, subdomain: str = "api", delivery: str | None = None,
                    **options):
        """A translator Destination bound to this tenant, with fast retries. Its own skips
        (the ones no Planhat answer recorded) are written to the tenant's report."""
        options.setdefault("backoff_base", 0.001)
        options.setdefault("backoff_max", 60.0)  # Retry-After is honoured: see sleep()
        options.setdefault("sleep", self.sleep)
        options.setdefault("random", random.Random(seed))
        from translator import Destination

        return ReportingDestination(self, Destination(self.settings(subdomain, delivery),
                                                      self.target.transport, **options))

    def sleep(self, seconds: float) -> None:
        """Wait: advance the tenant's test clock when it is set (the runner sets it: rate
        limits read it), else really sleep."""
        if self.clock().get("real", True):
            time.sleep(seconds)
        else:
            self.clock(advance=round(min(float(seconds), 86_400.0), 3))

    def add_report(self, entries: list[dict]) -> None:
        """Write entries (``reason``, ``message``, ``payload``, ``source``) to the report."""
        chunk: list[dict] = []
        size = 0
        for entry in entries:  # requests of at most 5,000 entries and about 4 MB
            entry_size = len(json.dumps(entry, default=str))
            if chunk and (len(chunk) == 5_000 or size + entry_size > REPORT_CHUNK_BYTES):
                self.target.admin("POST", "/report", {"entries": chunk}, tenant=self.tenant_token)
                chunk, size = [], 0
            chunk.append(entry)
            size += entry_size
        if chunk:
            self.target.admin("POST", "/report", {"entries": chunk}, tenant=self.tenant_token)

    def api(self, method: str, path: str, body=None):
        """A REST request with this tenant's API token; returns the transport's Response."""
        return self.target.request(method, path, body,
                                   {"Authorization": f"Bearer {self.api_token}"})

    def state(self) -> dict:
        return self.target.admin("GET", "/state", tenant=self.tenant_token)

    def report(self) -> dict:
        return self.target.admin("GET", "/report", tenant=self.tenant_token)

    def snapshot(self) -> dict:
        """This tenant's state as a version-tagged snapshot document."""
        return self.target.admin("GET", "/snapshot", tenant=self.tenant_token)

    def restore(self, doc: dict) -> None:
        """Replace this tenant's state with a snapshot's (one tenant; all or nothing)."""
        self.target.admin("PUT", "/snapshot", doc, tenant=self.tenant_token)

    def clock(self, **change) -> dict:
        """Read the tenant's clock, or set it: ``clock(now=ISO)``, ``clock(advance="P7D")``,
        ``clock(real=True)``."""
        if not change:
            return self.target.admin("GET", "/clock", tenant=self.tenant_token)
        return self.target.admin("POST", "/clock", change, tenant=self.tenant_token)

    def journal(self) -> list[dict]:
        return self.target.admin("GET", "/requests", tenant=self.tenant_token)["requests"]

    def fault(self, status: int, count: int = 1, method: str = "*", path: str = "*",
              retry_after: float | None = None) -> dict:
        rule = {"status": status, "count": count, "method": method, "path": path,
                "tenant": self.tenant_token}
        if retry_after is not None:
            rule["retryAfter"] = retry_after
        return self.target.admin("POST", "/faults", rule)


class ReportingDestination:
    """A translator ``Destination`` whose sends also write its own skips (the ones no Planhat
    answer recorded: ``filtered``, ``alias_conflict``, …) to the tenant's report, as the fake's
    Segment routes do. Everything else is the Destination's (``.settings``, ``.close()``…)."""

    def __init__(self, tenant: TenantHandle, destination) -> None:
        self.tenant = tenant
        self.destination = destination

    def send(self, call):
        return self._reported(self.destination.send(call))

    def send_many(self, calls):
        return self._reported(self.destination.send_many(calls))

    def _reported(self, result):
        entries = [{"reason": skip.reason, "message": (skip.detail or skip.reason)[:2000],
                    "payload": call, "source": SKIP_SOURCE}
                   for call, skip in result.skips if not skip.reported]
        if entries:
            self.tenant.add_report(entries)
        return result

    def __getattr__(self, name: str):
        return getattr(self.destination, name)

    def __repr__(self) -> str:
        return repr(self.destination)

    def __enter__(self) -> ReportingDestination:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destination.close()


# ----- results -----------------------------------------------------------------------------
@dataclass
class StepFailure:
    where: str  # file:line
    label: str
    mismatches: list[Mismatch] = field(default_factory=list)
    message: str = ""

    def render(self) -> str:
        lines = [f"  at {self.where}: {self.label}"]
        if self.message:
            lines += ["    " + line for line in self.message.splitlines()]
        lines += [m.render("    ") for m in self.mismatches]
        return "\n".join(lines)


@dataclass
class ScenarioResult:
    file: str
    name: str
    failures: list[StepFailure] = field(default_factory=list)  # every failing step
    problems: list = field(default_factory=list)  # load problems: the file is broken
    calls: int = 0
    tenant: str | None = None  # the tenant token it ran in
    deleted: bool = False  # whether that tenant was deleted afterwards
    delivery: str = "rest"
    state: dict | None = None  # the tenant's state after the last step that ran

    @property
    def failure(self) -> StepFailure | None:
        """The first failing step (``failures`` has them all)."""
        return self.failures[0] if self.failures else None

    @property
    def passed(self) -> bool:
        return not self.failures and not self.problems

    def render(self) -> str:
        head = f"{'PASS' if self.passed else 'FAIL'}  {self.file}: {self.name}"
        if self.problems:
            return head + "\n" + "\n".join(f"  {p}" for p in self.problems)
        if self.failures:
            return head + "\n" + self.render_failures()
        return head

    def render_failures(self) -> str:
        return "\n".join(f.render() for f in self.failures)


def _fail_text(result) -> str:
    lines = []
    for item in result.failed[:5]:
        request = item["request"]
        status = item["status"] if item["status"] is not None else item["error"]
        lines.append(f"{request.method} {request.path} -> {status} {item['body'][:200]}")
    if len(result.failed) > 5:
        lines.append(f"... and {len(result.failed) - 5} more")
    return "\n".join(lines)


# ----- running -----------------------------------------------------------------------------
def run_scenario(scenario: Scenario, target: Target | None = None,
                 keep: bool = True, delivery: str | None = None) -> ScenarioResult:
    """Run one loaded scenario in a fresh tenant; never raises for a failing scenario.

    ``keep=False`` deletes the tenant afterwards (``result.tenant`` names it either way).
    ``delivery`` (``rest``/``dock``) overrides the file's ``settings.delivery``; the result's
    ``state`` is the tenant's state when the run stopped."""
    if delivery is not None:
        _check_delivery(delivery)
    own = target is None
    target = target or Target()
    result = ScenarioResult(scenario.file, scenario.name)
    settings = scenario.data.get("settings") or {}
    result.delivery = delivery or settings.get("delivery") or "rest"
    try:
        tenant = _run(scenario, target, result)
        if tenant is not None:  # a fake of its own is dropped after: no copy needed
            result.state = _read_state(tenant) if own else tenant.state()
    except AdminError as exc:
        if not result.failures:
            result.failures.append(StepFailure(scenario.file, "the admin API",
                                               message=str(exc)))
    finally:
        if not keep and result.tenant and not own:
            target.admin("DELETE", "/tenants/" + quote(result.tenant, safe=""))
            result.deleted = True
        if own:
            target.close()
    return result


def apply_scenario(scenario: Scenario, tenant: TenantHandle,
                   steps: bool = False) -> ScenarioResult:
    """Apply a scenario's ``given`` (and with ``steps``, its steps and expectations) to an
    existing tenant: init files. The tenant's clock is set only when the file names one."""
    result = ScenarioResult(scenario.file, scenario.name)
    _run(scenario, tenant.target, result, tenant, steps)
    return result


def _run(scenario: Scenario, target: Target, result: ScenarioResult,
         tenant: TenantHandle | None = None, steps: bool = True) -> TenantHandle | None:
    data = scenario.data
    settings = data.get("settings") or {}
    actions = iter_plan(scenario) if steps else iter(())
    set_clock = tenant is None or "clock" in data
    if tenant is None:
        try:
            options = data.get("tenant") or {}
            tenant = target.new_tenant(options.get("unassigned"), settings.get("tenant_token"),
                                       settings.get("api_token"), options.get("emailMatch"),
                                       delivery=result.delivery,
                                       rate_limit=options.get("rateLimit"))
        except AdminError as exc:
            result.failures.append(StepFailure(scenario.where(("settings",)),
                                               "create the tenant", message=str(exc)))
            return None
    result.tenant = tenant.tenant_token
    if scenario.snapshot is not None:
        try:
            tenant.restore(scenario.snapshot)
        except AdminError as exc:
            result.failures.append(StepFailure(scenario.where(("given", "snapshot")),
                                               "given.snapshot", message=str(exc)))
            return tenant
    try:  # the fake's clock starts at the scenario's and moves with its clock steps
        if set_clock:
            tenant.clock(now=data.get("clock", DEFAULT_CLOCK))
    except AdminError as exc:
        result.failures.append(StepFailure(scenario.where(("clock",)), "set the clock",
                                           message=str(exc)))
        return tenant
    given = data.get("given") or {}
    for kind in (m.path for m in TABLE):  # companies first: the others may name one
        for index, record in enumerate(given.get(kind) or []):
            response = _patient(tenant, "POST", f"/{kind}", record)
            if not 200 <= response.status < 300 and response.status != 202:
                result.failures.append(StepFailure(
                    scenario.where(("given", kind, index)), f"given.{kind}[{index}]",
                    message=f"POST /{kind} answered {response.status}: {response.text[:300]}"))
                return tenant
    destination = tenant.destination(seed=scenario.seed, subdomain=settings.get("subdomain",
                                                                                 "api"))
    delivered = _no_deliveries()
    unchecked: list[tuple[str, str, str]] = []  # failed deliveries no expect looked at
    saved: dict = {}  # request steps' saved values, by name
    for action in actions:
        where = scenario.where(action.path)
        if action.kind == "send":
            calls = iter(action.calls)
            while chunk := list(itertools.islice(calls, SEND_CHUNK)):
                sent = destination.send_many(chunk)
                result.calls += len(chunk)
                delivered["calls"] += sent.calls
                for call in chunk:
                    kind = call.get("type", "?") if isinstance(call, dict) else "?"
                    delivered["types"][kind] = delivered["types"].get(kind, 0) + 1
                delivered["sent"] += sent.sent
                delivered["failed"] += sent.failed_calls
                for reason, n in sent.skipped.items():
                    delivered["skipped"][reason] = delivered["skipped"].get(reason, 0) + n
                if sent.failed:
                    unchecked.append((where, action.label, _fail_text(sent)))
        elif action.kind == "clock":
            try:
                tenant.clock(now=action.now)
            except AdminError as exc:
                result.failures.append(StepFailure(where, action.label, message=str(exc)))
                return tenant
        elif action.kind == "request":
            message = _request(tenant, action.request, saved)
            if message:  # shown with the others at the end; the next steps still run
                result.failures.append(StepFailure(where, action.label, message=message))
        elif action.kind == "fault":
            try:
                tenant.fault(action.fault["status"], action.fault["count"],
                             action.fault["method"], action.fault["path"],
                             action.fault.get("retryAfter"))
            except AdminError as exc:
                result.failures.append(StepFailure(where, action.label, message=str(exc)))
                return tenant
        else:
            state = _read_state(tenant)
            journal = tenant.journal() if "journal" in action.expect else None
            mismatches = check(action.expect, state, journal, delivered, action.engage)
            if "failed" in action.expect.get("delivered", {}):
                unchecked.clear()
            delivered = _no_deliveries()
            if mismatches:  # shown with the others at the end; the next expects still run
                message = ""
                if unchecked:
                    message = "requests failed before this point:\n" + "\n".join(
                        f"{w} {label}: {text}" for w, label, text in unchecked)
                    unchecked.clear()
                _explain(tenant, mismatches)
                result.failures.append(StepFailure(where, action.label, mismatches, message))
    if unchecked:
        where, label, text = unchecked[0]
        result.failures.append(StepFailure(where, label, message="requests failed after all "
                                           "retries (expect 'delivered: {failed: N}' if you "
                                           "mean it):\n" + text))
    return tenant


def _patient(tenant: TenantHandle, method: str, path: str, body, take_429: bool = False):
    """``tenant.api(...)``, waiting out a rate limit's 429s (a tenant with a rate limit may
    answer one) unless ``take_429``."""
    response = tenant.api(method, path, body)
    for _ in range(GIVEN_RETRIES):
        if response.status != 429 or take_429:
            break
        tenant.sleep(_seconds(response.header("Retry-After")))
        response = tenant.api(method, path, body)
    return response


def _request(tenant: TenantHandle, step: dict, saved: dict) -> str:
    """Send a request step with the tenant's API token (riding out 429s, unless it expects
    one), its ``{saved.NAME}`` filled in, and save what it asks from the answer; what is
    wrong, or ''."""
    method = step["method"]
    in_body = _saved_in(step.get("body"))
    missing = sorted({name for name in SAVED_REF.findall(step["path"]) if name not in saved}
                     | {name for name in in_body if name not in saved})
    if missing:
        refs = ", ".join(f"{{saved.{name}}}" for name in missing)
        return f"not sent: {refs} has no value (the step that saves it failed)"
    path = SAVED_REF.sub(lambda m: quote(str(saved[m.group(1)]), safe=""),
                         step["path"].replace(TENANT_TOKEN, quote(tenant.tenant_token, safe="")))
    expected = step.get("status")
    body = _fill(step.get("body"), saved) if in_body else step.get("body")
    response = _patient(tenant, method, path, body, expected == 429)
    problems = []
    if not (expected is None and 200 <= response.status < 300 or response.status == expected):
        wanted = expected if expected is not None else "2xx"
        problems.append(f"{method} {path} answered {response.status}, expected {wanted}: "
                        f"{response.text[:300]}")
    for name, where in (step.get("save") or {}).items():
        value = _pick(response, where)
        if value is None:
            problems.append(f"save {name}: the answer has no string or number at {where!r}: "
                            f"{response.text[:300]}")
        else:
            saved[name] = value
    return "\n".join(problems)


def _saved_in(body) -> set:
    """The names a request body's ``{saved.NAME}`` strings refer to."""
    names, stack = set(), [body]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and SAVED_REF.fullmatch(value):
            names.add(SAVED_REF.fullmatch(value).group(1))
    return names


def _fill(body, saved: dict):
    """The body with each string that is exactly ``{saved.NAME}`` replaced by that value (the
    loader bounded the body's depth by the YAML/JSON parser's)."""
    if isinstance(body, dict):
        return {k: _fill(v, saved) for k, v in body.items()}
    if isinstance(body, list):
        return [_fill(v, saved) for v in body]
    if isinstance(body, str) and SAVED_REF.fullmatch(body):
        return saved[SAVED_REF.fullmatch(body).group(1)]
    return body


def _pick(response, where: str):
    """The scalar at a dotted path of a JSON answer (list items by number), or None."""
    try:
        value = response.json()
    except ValueError:
        return None
    for part in where.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) \
        else None


def _read_state(tenant: TenantHandle) -> dict:
    """The tenant's state, for the runner to read (never to change): in process, the tenant's
    own records (``GET /__admin/state`` answers the same values as JSON; a parsed JSON copy of
    every record and activity was most of a 100,000-user run's peak memory); over HTTP, the
    admin API's answer."""
    fake = getattr(tenant.target.app, "extensions", {}).get("mock_planhat")
    found = fake.registry.by_tenant_token(tenant.tenant_token) if fake is not None else None
    if found is None:  # over HTTP, or a tenant gone: the admin API answers (or says why)
        return tenant.state()
    with found.lock:
        return found.snapshot()


def _no_deliveries() -> dict:
    return {"calls": 0, "sent": 0, "failed": 0, "skipped": {}, "types": {}}


MAX_EXPLAINED = 5  # records explained per failing expect
MAX_DECISIONS = 8  # the newest decisions shown per record


def _explain(tenant: TenantHandle, mismatches: list) -> None:
    """Give each mismatch about one record the decisions of the rows that touched it
    (``GET /__admin/explain``), so a failure says why: held, discarded, matched by email..."""
    from ..trace import summary

    explained = 0
    for mismatch in mismatches:
        if mismatch.key is None or explained >= MAX_EXPLAINED:
            continue
        explained += 1
        name, value = mismatch.key
        query = urlencode({name: value, "tenant": tenant.tenant_token})
        response = tenant.target.request("GET", f"/__admin/explain?{query}")
        if response.status != 200:
            continue
        history = response.json()["history"]
        lines = []
        for item in history[-MAX_DECISIONS:]:
            entry = item["entry"]
            where = (f"{entry['method']} {entry['path']}" if entry
                     else item["via"] or "(dropped from the journal)")
            lines.append(f"{where}: {summary(item['decision'])}")
        if len(history) > MAX_DECISIONS:
            lines.insert(0, f"({len(history) - MAX_DECISIONS} older decisions not shown)")
        mismatch.trace = lines or ["no row named it (no decision recorded)"]


def run_file(path, target: Target | None = None, keep: bool = True,
             delivery: str | None = None) -> ScenarioResult:
    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        return ScenarioResult(str(path), "(invalid file)", problems=exc.problems)
    return run_scenario(scenario, target, keep, delivery)
