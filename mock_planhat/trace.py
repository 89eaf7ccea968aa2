"""Decisions as data: what each row the fake wrote or refused decided, and why.

The matching rule returns an :class:`~mock_planhat.matching.Outcome` per row; that outcome *is*
the decision (the key that matched, the outcome and its reason, the record before and after,
the near misses). Recording a request's rows keeps one packed :class:`Group` (their plain
values in one flat tuple): nothing is formatted on the write path, and no container is kept
per row. :func:`decision` turns an outcome into its JSON shape when someone reads it — the
journal, ``GET /__admin/explain``, scenario failures and the dashboard all read it from here,
and nobody re-derives a decision from state afterwards.

A tenant's :class:`History` indexes its decisions by the record they touched (``id:…``) and,
for rows that touched none (rejected, discarded, skipped), by the keys the row sent
(``externalId:…``, ``email:…``), so ``explain`` finds the story of one person without scanning
the journal. It is bounded: at most ``PER_KEY`` decisions a key (the newest) and ``MAX_KEYS``
keys (the oldest key goes first).
"""

from __future__ import annotations

import json
from collections import Counter
from itertools import islice

PER_KEY = 10
MAX_KEYS = 200_000
MAX_CHANGED = 20  # changed fields shown per decision
MAX_VALUE = 200  # characters of a value shown in a decision
SKIPPED_FIELDS = frozenset({"updatedAt", "createDate"})
SENT_KEYS = ("_id", "externalId", "sourceId", "email", "companyId", "companyExternalId",
             "userId", "type", "event", "action")  # what a decision shows of its row


# A decision as read: a plain tuple of plain values (near misses as tuples; the changes as one
# flat tuple: field, from, to, field, ...).
# Fields, by position; the row's keys follow, flattened into the same tuple from ROW on
# (name, value, name, value, ...).
(KIND, STATUS, REASON, MESSAGE, KEY, RECORD_ID, ENDUSER_ID, CHANGES, NEAR, DETAIL,
 ENTRY, INDEX, VIA, ROW) = range(14)
_PACKED = DETAIL - STATUS + 1  # fields a row keeps in a Group, STATUS..DETAIL, then its keys
_FILED = ("externalId", "email", "userId")  # row keys a decision without a record is filed by


class Group:
    """The decisions of one request's rows of one kind, kept packed: every row's fields and
    keys in one flat tuple (STATUS..DETAIL, the number of key items, then the row's keys as
    name, value, ...), the kind, journal entry and ``via`` once for the group. Recording a
    request's rows thus keeps two containers however many rows it had (a container per row
    was most of what the trace cost figure 1a: each one the GC counts, and a full pass more
    a batched round); iterating a group gives each row's decision tuple (KIND.. ROW.. above),
    made when someone reads it."""

    __slots__ = ("kind", "entry", "via", "flat", "count")

    def __init__(self, kind: str, entry: int, via: str | None, flat: tuple, count: int):
        self.kind, self.entry, self.via, self.flat, self.count = kind, entry, via, flat, count

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        head = (self.kind,)
        flat, at = self.flat, 0
        for index in range(self.count):
            end = at + _PACKED
            keys = end + 1 + flat[end]
            yield head + flat[at:end] + (self.entry, index, self.via) + flat[end + 1:keys]
            at = keys

    def first(self, limit: int) -> list[tuple]:
        """The first ``limit`` decisions."""
        return list(islice(self, max(limit, 0)))


def settle(kind: str, outcomes, entry_id: int, via: str | None = None,
           history: History | None = None) -> Group:
    """The outcomes of journal entry ``entry_id`` as decisions to keep: no reference to a
    record (its id, and for an update the changed fields, computed here once). ``via`` names a
    source the journal does not keep, such as the admin API's assign. With ``history``, the
    decisions are also counted and filed there (in the same walk over the rows)."""
    flat: list = []
    extend = flat.extend
    activity = kind == "activity"
    filed = []  # (history key, ...) for this group
    file = filed.append
    runs = []  # (status, reason, rows) runs, for the counts
    status_was = reason_was = None
    run = 0
    for outcome in outcomes:
        record = outcome.record
        record_id = enduser_id = changes = near = None
        status, reason = outcome.status, outcome.reason
        if record is not None:
            record_id = record.get("_id")
            if activity:
                enduser_id = record.get("enduserId")
            elif record_id is not None:
                file(record_id)  # "id:" + record_id, filed as the id itself (see about)
            old = outcome.old
            if old is not None and record is not old:
                changes = changed(old, record)
        if outcome.near:
            near = tuple((m["key"], m["value"], m["why"], m.get("recordId"))
                         for m in outcome.near)
        row = outcome.row  # only its keys are kept: decisions outlive the request
        sent: list = []
        if type(row) is dict:
            for k in SENT_KEYS:
                if k in row:
                    sent += (k, row[k])
        extend((status, reason, outcome.message, outcome.key, record_id, enduser_id, changes,
                near, outcome.decision, len(sent)))
        if sent:
            extend(sent)
            if record_id is None:
                for at in range(0, len(sent), 2):
                    k, value = sent[at], sent[at + 1]
                    if k in _FILED and isinstance(value, str) and value:
                        file("email:" + value.strip().lower() if k == "email" else
                             "externalId:" + value)
        if status is status_was and reason is reason_was:
            run += 1
        else:
            if run:
                runs.append((status_was, reason_was, run))
            status_was, reason_was, run = status, reason, 1
    if run:
        runs.append((status_was, reason_was, run))
    group = Group(kind, entry_id, via, tuple(flat), len(outcomes))
    if history is not None:
        history.add(group, filed, runs)
    return group


def row_keys(item: tuple) -> dict:
    flat = item[ROW:]
    return dict(zip(flat[::2], flat[1::2], strict=True))


class History:
    """One tenant's decisions, by the record they touched or the keys the row named.

    A key names the groups (see :class:`Group`) holding its decisions, newest last; reading
    picks that key's decisions out of them. An ``id:…`` key is filed as the record's id string
    itself (ids are 24 hexadecimal characters, the other keys carry their prefix), which the
    record already holds. Callers hold the tenant's lock (the store's
    rule)."""

    def __init__(self) -> None:
        self._by_key: dict[str, object] = {}  # key -> one Group, or a tuple of them
        self.counts: Counter[tuple] = Counter()  # (kind, outcome, reason) -> rows

    def add(self, group: Group, keys: list[str], runs) -> None:
        """File ``group`` under ``keys`` (one of its rows each) and count its ``runs``:
        (outcome, reason, rows) in row order."""
        counts, kind = self.counts, group.kind
        for status, reason, rows in runs:
            counts[kind, status, reason] += rows
        by_key = self._by_key
        for key in keys:
            groups = by_key.get(key)
            if groups is None:
                if len(by_key) >= MAX_KEYS:
                    del by_key[next(iter(by_key))]
                by_key[key] = group  # most keys only ever get one
            elif groups is group:
                continue  # a row before it in this group filed it already
            elif type(groups) is Group:
                by_key[key] = (groups, group)
            elif groups[-1] is not group:
                # A group holds at least one of the key's decisions, so the newest PER_KEY
                # decisions are in the newest PER_KEY groups.
                by_key[key] = (groups + (group,))[-PER_KEY:]

    def about(self, keys) -> list[tuple]:
        """The decisions filed under any of ``keys`` ("id:…", "externalId:…", "email:…"),
        oldest first, each once: the newest ``PER_KEY`` of each key."""
        seen, out = set(), []
        for key in keys:
            if key.startswith("id:"):  # filed under the record's own id string (no copy)
                key = key[3:]
                if ":" in key:  # no id has one; the other keys all do
                    continue
            groups = self._by_key.get(key)
            if groups is None:
                continue
            mine = [item for group in ((groups,) if type(groups) is Group else groups)
                    for item in group if key in _filed_under(item)]
            for item in mine[-PER_KEY:]:
                ident = (item[ENTRY], item[INDEX], item[KIND])
                if ident not in seen:
                    seen.add(ident)
                    out.append(item)
        out.sort(key=lambda item: (item[ENTRY], item[INDEX]))
        return out


def _filed_under(item: tuple) -> list[str]:
    """The history keys a decision is filed under (as :func:`settle` files it)."""
    if item[RECORD_ID] is not None:
        return [] if item[KIND] == "activity" else [item[RECORD_ID]]
    flat = item[ROW:]
    return ["email:" + value.strip().lower() if name == "email" else "externalId:" + value
            for name, value in zip(flat[::2], flat[1::2], strict=True)
            if name in _FILED and isinstance(value, str) and value]


def decision(item: tuple) -> dict:
    """One decision as JSON: what the row sent, the key that matched, the outcome and its
    reason, the fields that changed (old → new, bounded) and the near misses."""
    kind = item[KIND]
    out: dict = {"kind": kind}
    out["index"] = item[INDEX]
    out["outcome"] = item[STATUS]
    if len(item) > ROW:
        out["row"] = {k: _short(v) for k, v in row_keys(item).items() if v is not None}
    out["matchedBy"] = item[KEY]
    if item[RECORD_ID] is not None:
        out["recordId"] = item[RECORD_ID]
        if kind == "activity":
            out["enduserId"] = item[ENDUSER_ID]
    if item[REASON]:
        out["reason"] = item[REASON]
    if item[MESSAGE]:
        out["message"] = item[MESSAGE]
    flat = item[CHANGES]
    if flat:
        out["changed"] = {f: ({"from": a, "to": b} if f != "…" else a)
                          for f, a, b in zip(flat[::3], flat[1::3], flat[2::3], strict=True)}
    if item[NEAR]:
        out["nearMisses"] = [{"key": k, "value": v, "why": why, **({"recordId": r} if r else {})}
                             for k, v, why, r in item[NEAR]]
    if item[DETAIL]:
        out["detail"] = item[DETAIL]  # a rule's own note (e.g. an email attach)
    return out


def changed(old: dict, new: dict, limit: int = MAX_CHANGED) -> tuple | None:
    """The fields that differ, as one flat tuple ``(field, from, to, field, from, to, ...)``
    (custom fields one level down as ``custom.name``; values shortened), or None. Fields in
    ``old``'s order, then those only ``new`` has; past ``limit`` fields the rest are one
    ``("…", "N more fields", None)``."""
    out: list = []
    get = new.get
    shared = 0
    for key, before in old.items():
        after = get(key, _MISSING)
        if after is not _MISSING:
            shared += 1
            if after is before:  # an update copies the fields it does not change
                continue
        else:
            after = None
        if key not in SKIPPED_FIELDS and before != after:
            _note(out, key, before, after)
    if shared < len(new):
        for key, after in new.items():
            if key not in old and key not in SKIPPED_FIELDS and after is not None:
                _note(out, key, None, after)
    if not out:
        return None
    if len(out) > 3 * limit:
        out[3 * limit:] = ("…", f"{len(out) // 3 - limit} more fields", None)
    return tuple(out)


_MISSING = object()


def _note(out: list, key: str, before, after) -> None:
    if key == "custom" and isinstance(before, dict) and isinstance(after, dict):
        for name in {**before, **after}:
            was, now = before.get(name), after.get(name)
            if was != now:
                out += (f"custom.{name}", _short(was), _short(now))
        return
    out += (key, _short(before), _short(after))


def _short(value):
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE else value[:MAX_VALUE] + "…"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, default=str)
        return value if len(text) <= MAX_VALUE else text[:MAX_VALUE] + "…"
    return value


def summary(item: dict) -> str:
    """A decision in one line: ``held (no_company): companyId: …; near miss: …``."""
    text = item["outcome"]
    if item.get("reason"):
        text += f" ({item['reason']})"
    if item.get("matchedBy"):
        text += f", matched by {item['matchedBy']}"
    if item.get("message"):
        text += f": {item['message']}"
    for miss in item.get("nearMisses") or ():
        text += f"; near miss: {miss['key']} {miss['value']!r} {miss['why']}"
    if item.get("changed"):
        text += "; changed " + ", ".join(item["changed"])
    return text
