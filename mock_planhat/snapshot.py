"""Snapshots: a tenant's (or every tenant's) state as one version-tagged JSON document.

The same format serves ``GET/PUT /__admin/snapshot``, the ``--state`` file and
``given: {snapshot: FILE}``. A document is checked whole before anything changes: its format
version, the shipped JSON Schema (``snapshot.schema.json``), then what a schema cannot say
(unique ids and keys, end users' companies). Restoring builds each tenant's state in a
scratch tenant, indexes included, and swaps it in only when every tenant built.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections import Counter
from datetime import datetime, timedelta, timezone
from importlib import resources

from . import __version__
from .models import TABLE
from .ratelimit import parse_rate_limit
from .report import Report
from .store import Tenant, format_millis

FORMAT = "mock-planhat-snapshot"
FORMAT_VERSION = 1
# Keys added to version 1 after its first release, optional so older documents still load: a
# tenant's ``settings.rateLimit`` and a whole-fake snapshot's ``unknownTenant`` report.
RATE_LIMIT = "rateLimit"
UNKNOWN_TENANT = "unknownTenant"


class SnapshotError(ValueError):
    """A snapshot that cannot be restored; ``field`` names where (``tenants[0].endusers[2]``)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


# ----- times and durations ------------------------------------------------------------------
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)\Z")
_DURATION = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?\Z")


def parse_time(text, field: str) -> int:
    """An ISO-8601 time with a zone (``2024-06-01T00:00:00Z``) → milliseconds since the epoch."""
    if not isinstance(text, str) or not _ISO.match(text):
        raise SnapshotError(field, f"{text!r} is not an ISO-8601 time like "
                                   "2024-06-01T00:00:00Z")
    try:
        # Python 3.10's fromisoformat takes only 3 or 6 fraction digits: pad to 6 first.
        head, _, rest = text.partition(".")
        if rest:
            digits = re.match(r"\d+", rest).group()
            head = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits):]}"
        stamp = datetime.fromisoformat(head.replace("Z", "+00:00"))
        millis = int(stamp.timestamp() * 1000)
    except (ValueError, OverflowError) as exc:
        raise SnapshotError(field, f"{text!r}: {exc}") from None
    _in_range(millis, field)
    return millis


_LAST_MILLIS = 253402300799999  # 9999-12-31T23:59:59.999Z


def _in_range(millis: int, field: str) -> None:
    if not 0 <= millis <= _LAST_MILLIS:
        raise SnapshotError(field, "the clock runs from 1970-01-01T00:00:00Z to "
                                   "9999-12-31T23:59:59.999Z")


def parse_duration(value, field: str) -> int:
    """``P30D``, ``PT1H30M``, ``P1W`` or a number of seconds → milliseconds (never negative)."""
    if isinstance(value, bool):
        raise SnapshotError(field, "must be an ISO-8601 duration (P30D, PT1H) or seconds")
    if isinstance(value, (int, float)):
        if not 0 <= value <= 1e11:
            raise SnapshotError(field, f"{value} seconds: the clock moves forward only "
                                       "(0 to 10^11 seconds)")
        return int(value * 1000)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or value in ("P", "PT") or value.endswith("T"):
        raise SnapshotError(field, f"{value!r} is not a duration like P30D, PT1H30M or P1W "
                                   "(years and months are not fixed lengths; use days)")
    weeks, days, hours, minutes, seconds = (float(g) if g else 0 for g in match.groups())
    delta = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    millis = int(delta.total_seconds() * 1000)
    if millis > 1e14:
        raise SnapshotError(field, f"{value!r} is too far (at most 10^11 seconds)")
    return millis


def set_clock(tenant: Tenant, body: dict) -> None:
    """Apply ``{"now": ISO}``, ``{"advance": "P30D" | seconds}`` or ``{"real": true}``."""
    keys = [k for k in ("now", "advance", "real") if k in body]
    unknown = sorted(set(body) - {"now", "advance", "real"})
    if unknown:
        raise SnapshotError(unknown[0], "not a clock field (now, advance, real)")
    if len(keys) != 1:
        raise SnapshotError("now", "send exactly one of now, advance, real")
    if keys[0] == "now":
        tenant.set_clock(parse_time(body["now"], "now"))
    elif keys[0] == "advance":
        moved = tenant.now_millis() + parse_duration(body["advance"], "advance")
        _in_range(moved, "advance")
        tenant.set_clock(moved)
    elif body["real"] is True:
        tenant.set_clock(None)
    else:
        raise SnapshotError("real", "must be true (to freeze the clock, send now)")


# ----- dump ---------------------------------------------------------------------------------
def dump_tenant(tenant: Tenant) -> dict:
    """One tenant as snapshot data (takes the tenant's lock)."""
    with tenant.lock:
        return {
            "tenantToken": tenant.tenant_token,
            "apiToken": tenant.api_token,
            "settings": {**tenant.settings(), RATE_LIMIT: tenant.rate_limit.text
                         if tenant.rate_limit else "off"},
            "clock": {"real": True} if tenant.clock_millis is None
            else {"now": format_millis(tenant.clock_millis)},
            **tenant.records(),
        }


def dump(tenants: list[Tenant], unknown_tenant: Report | None = None) -> dict:
    """The tenants as a snapshot document; with ``unknown_tenant`` (a whole-fake snapshot),
    also the report of requests that named no tenant."""
    doc = {"format": FORMAT, "formatVersion": FORMAT_VERSION, "packageVersion": __version__,
           "savedAt": format_millis(int(datetime.now(timezone.utc).timestamp() * 1000)),
           "tenants": [dump_tenant(t) for t in tenants]}
    if unknown_tenant is not None:
        counts, _ = unknown_tenant.tallies()
        doc[UNKNOWN_TENANT] = {"report": unknown_tenant.entries(), "reportCounts": counts}
    return doc


def dump_all(registry) -> dict:
    """Every tenant of a fake and its unknown-tenant report."""
    return dump(registry.all(), registry.unknown_tenant_report)


# ----- check --------------------------------------------------------------------------------
_validator = None


def schema() -> dict:
    return json.loads(resources.files("mock_planhat").joinpath("snapshot.schema.json")
                      .read_text("utf-8"))


def _field(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "snapshot"


def check(doc) -> None:
    """Raise `SnapshotError` naming the first bad field; the version is checked first, so a
    document from another release is refused by its version, not by its shape."""
    global _validator
    if not isinstance(doc, dict):
        raise SnapshotError("snapshot", "must be a JSON object")
    if doc.get("format") != FORMAT:
        raise SnapshotError("format", f"{doc.get('format')!r} is not a mock-planhat snapshot "
                                      f"(expected {FORMAT!r})")
    version = doc.get("formatVersion")
    if version != FORMAT_VERSION:
        raise SnapshotError("formatVersion", f"{version!r} is not a snapshot version this "
                            f"release (mock-planhat {__version__}) reads: it reads version "
                            f"{FORMAT_VERSION}; the file was written by mock-planhat "
                            f"{doc.get('packageVersion', '(unknown)')}")
    if _validator is None:
        from jsonschema import Draft202012Validator

        _validator = Draft202012Validator(schema())
    error = next(iter(sorted(_validator.iter_errors(doc), key=lambda e: list(e.path))), None)
    if error is not None:
        raise SnapshotError(_field(error.absolute_path), error.message[:300])
    seen_tokens: dict[str, str] = {}
    for t, item in enumerate(doc["tenants"]):
        for key in ("tenantToken", "apiToken"):
            where = f"tenants[{t}].{key}"
            if item[key] in seen_tokens:
                raise SnapshotError(where, f"{item[key]!r} is also {seen_tokens[item[key]]}")
            seen_tokens[item[key]] = where
        if "now" in item.get("clock", {}):
            parse_time(item["clock"]["now"], f"tenants[{t}].clock.now")


def build(item: dict, tenant_token: str, api_token: str, registry,
          where: str = "tenants[0]") -> Tenant:
    """A scratch tenant holding ``item``'s state, indexes rebuilt; raises `SnapshotError` for
    a duplicate id or key, or an end user whose company is not in the snapshot."""
    scratch = registry.build(tenant_token, api_token)
    for name, value in (item.get("settings") or {}).items():
        if name != RATE_LIMIT:  # the registry applies it (see _rate_limit)
            setattr(scratch, Tenant.OPTIONS[name], value)
    clock = item.get("clock") or {}
    scratch.set_clock(parse_time(clock["now"], f"{where}.clock.now") if "now" in clock else None)
    ids: set[str] = set()
    for model in TABLE:  # companies first: the records of every other model may name one
        collection = scratch.collections[model.path]
        for kind in (model.path, "pending") if model.holds else (model.path,):
            held = kind != model.path  # end users' pending contacts: no company yet
            for index, record in enumerate(item.get(kind) or []):
                here = f"{where}.{kind}[{index}]"
                _unique(record, ids, here, collection.by_external_id, collection.by_source_id)
                owner = model.company_field
                if owner and not held and (model.company_owned
                                           or record.get(owner) is not None):
                    record = _with_company(scratch, record, owner, here)
                _check_links(scratch, model, record, here)
                collection.put(record, held=held)
    for activity in item.get("activities") or []:
        scratch.add_activity(activity)
    scratch.dimensiondata = list(item.get("dimensiondata") or [])
    _fill_report(scratch.report, item, where)
    return scratch


def _with_company(scratch: Tenant, record: dict, field: str, where: str) -> dict:
    """``record``, whose ``field`` must be the ``_id`` of a company in the snapshot (else
    `SnapshotError`), with its derived ``companyName`` kept in step with that company."""
    company = scratch.company(record.get(field))
    if company is None:
        raise SnapshotError(f"{where}.{field}", f"{record.get(field)!r} is not the _id of a "
                            "company in this snapshot")
    if record.get("companyName") != company.get("name"):
        record = {**record, "companyName": company.get("name")}
    return record


def _check_links(scratch: Tenant, model, record: dict, where: str) -> None:
    """Every id in ``record``'s links (`Model.links`: an Issue's ``companyIds``, a
    conversation's ``endusers``, …) names a record of its target in the snapshot (a pending
    contact is not an end user), else `SnapshotError` naming the field and the item."""
    for name, target in model.links.items():
        value = record.get(name)
        if value is None:
            continue
        records = scratch.collections[target].records
        items = enumerate(value) if isinstance(value, list) else ((None, value),)
        for i, key in items:
            if not isinstance(key, str) or key not in records:
                field = f"{where}.{name}" + ("" if i is None else f"[{i}]")
                raise SnapshotError(field, f"{key!r} is not the _id of "
                                    f"{'a company' if target == 'companies' else 'an end user'}"
                                    " in this snapshot")


def _fill_report(report: Report, item: dict, where: str) -> None:
    """Add ``item``'s ``report`` entries and take its ``reportCounts``: a reason counts at
    least its entries, and what is counted but not kept (by the snapshot, or now by this
    report's bounds) is ``dropped``, so ``counts == kept + dropped`` holds; a reason without
    a count counts its entries."""
    entries = item.get("report") or []
    counts = item.get("reportCounts")
    if counts is not None:
        given = Counter(entry["reason"] for entry in entries)
        for reason, count in counts.items():
            if count < given[reason]:
                raise SnapshotError(f"{where}.reportCounts.{reason}", f"{count} is fewer than "
                                    f"the report's {given[reason]} {reason!r} entries")
        counts = {**given, **counts}  # a reason without a count: its entries
    for entry in entries:
        entry = dict(entry)
        report.add(entry, entry.pop("payload", None))
    if counts is not None:  # entries past the report's bound are counted, not kept
        kept = Counter({k: v - report.dropped[k] for k, v in report.counts.items()})
        report.counts = Counter(counts)
        report.dropped = Counter({k: v - kept[k] for k, v in counts.items() if v > kept[k]})


def _rate_limit(item: dict):
    """The tenant's rate limit in the snapshot, or True when it names none (a snapshot
    written before the key existed): the tenant keeps its own, a new one gets the default."""
    settings = item.get("settings") or {}
    return parse_rate_limit(settings[RATE_LIMIT]) if RATE_LIMIT in settings else True


def _unique(record, ids, where, by_external, by_source) -> None:
    if record["_id"] in ids:
        raise SnapshotError(f"{where}._id", f"{record['_id']!r} is used twice")
    ids.add(record["_id"])
    for key, find in (("externalId", by_external), ("sourceId", by_source)):
        if record.get(key) is not None and find(record[key]) is not None:
            raise SnapshotError(f"{where}.{key}", f"{record[key]!r} is used twice")


# ----- restore ------------------------------------------------------------------------------
def restore(registry, doc, tenant: Tenant | None = None) -> list[Tenant]:
    """Restore ``doc`` all or nothing. With ``tenant``: the document must hold one tenant, whose
    state (settings, clock, records) replaces ``tenant``'s; the tokens stay ``tenant``'s.
    Without: the fake's tenants become the document's (the default tenant is kept, emptied
    unless the document holds it); returns the restored tenants."""
    check(doc)
    items = doc["tenants"]
    if tenant is not None:
        if len(items) != 1:
            raise SnapshotError("tenants", f"holds {len(items)} tenants; restoring into one "
                                "tenant (?tenant=) needs exactly one")
        scratch = build(items[0], tenant.tenant_token, tenant.api_token, registry)
        with tenant.lock:
            tenant.adopt(scratch)
        registry.set_rate_limit(tenant, _rate_limit(items[0]))
        return [tenant]
    default = registry.default
    scratches = [build(item, item["tenantToken"], item["apiToken"], registry, f"tenants[{i}]")
                 for i, item in enumerate(items)]
    own = set(default.tokens)
    for index, scratch in enumerate(scratches):  # the default tenant keeps its two tokens
        if scratch.tokens != default.tokens and own & set(scratch.tokens):
            raise SnapshotError(f"tenants[{index}].apiToken", "shares a token with the default "
                                "tenant but is not it (both tokens, in their roles); the default "
                                "tenant's tokens come from the command line")
    unknown = None
    if UNKNOWN_TENANT in doc:
        config = registry.config
        unknown = Report(config.report_size, config.report_bytes, config.payload_bytes)
        _fill_report(unknown, doc[UNKNOWN_TENANT], UNKNOWN_TENANT)
    restored = []
    for other in registry.all():
        if other is not default:
            registry.remove(other)
    with default.lock:
        default.adopt(registry.build(default.tenant_token, default.api_token))
    registry.unknown_tenant_report.adopt(unknown)
    for item, scratch in zip(items, scratches, strict=True):
        if scratch.tenant_token == default.tenant_token:
            with default.lock:
                default.adopt(scratch)
            registry.set_rate_limit(default, _rate_limit(item))
            restored.append(default)
        else:
            registry.insert(scratch, _rate_limit(item))
            restored.append(scratch)
    return restored


# ----- files --------------------------------------------------------------------------------
def read_file(path) -> dict:
    """A snapshot file, checked; raises `SnapshotError` with a one-line message."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except OSError as exc:
        raise SnapshotError(str(path), f"cannot be read: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:
        raise SnapshotError(str(path), f"is not a JSON snapshot: {exc}") from None
    try:
        check(doc)
    except SnapshotError as exc:
        raise SnapshotError(str(path), str(exc)) from None
    return doc


def temp_prefix(path) -> str:
    return f".{os.path.basename(os.fspath(path))}.saving-"


def write_file(path, doc: dict) -> None:
    """Write atomically: a temp file in the same folder, fsync, rename over ``path``, fsync
    the folder. A kill at any moment leaves the old file or the new one."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
