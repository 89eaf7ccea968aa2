"""Decisions as data: what each row the fake wrote or refused decided, and why.

The matching rule returns an :class:`~mock_planhat.matching.Outcome` per row; that outcome *is*
the decision (the key that matched, the outcome and its reason, the record before and after,
the near misses). Recording one costs a list append: nothing is copied or formatted on the
write path. :func:`decision` turns an outcome into its JSON shape when someone reads it — the
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

PER_KEY = 10
MAX_KEYS = 200_000
MAX_CHANGED = 20  # changed fields shown per decision
MAX_VALUE = 200  # characters of a value shown in a decision
SKIPPED_FIELDS = frozenset({"updatedAt", "createDate"})
SENT_KEYS = ("_id", "externalId", "sourceId", "email", "companyId", "companyExternalId",
             "userId", "type", "event", "action")  # what a decision shows of its row


# A decision as kept: a plain tuple of plain values (near misses and changes as tuples), so
# that once the GC has seen it, it no longer tracks it: the journal and the history hold
# hundreds of thousands of them, and every container kept per row adds to the collections'
# work. Fields, by position; the row's keys follow, flattened into the same tuple from ROW on
# (name, value, name, value, ...), so a row costs one container, not two.
(KIND, STATUS, REASON, MESSAGE, KEY, RECORD_ID, ENDUSER_ID, CHANGES, NEAR, DETAIL,
 ENTRY, INDEX, VIA, ROW) = range(14)


def settle(kind: str, outcomes, entry_id: int, via: str | None = None) -> list[tuple]:
    """The outcomes of journal entry ``entry_id`` as decisions to keep: no reference to a
    record (its id, and for an update the changed fields, computed here once). ``via`` names a
    source the journal does not keep, such as the admin API's assign."""
    out = []
    append = out.append
    activity = kind == "activity"
    for index, outcome in enumerate(outcomes):
        record = outcome.record
        record_id = enduser_id = changes = near = None
        if record is not None:
            record_id = record.get("_id")
            if activity:
                enduser_id = record.get("enduserId")
            old = outcome.old
            if old is not None and record is not old:
                changes = tuple((f, c["from"], c["to"]) if isinstance(c, dict) else (f, c, None)
                                for f, c in changed(old, record).items())
        if outcome.near:
            near = tuple((m["key"], m["value"], m["why"], m.get("recordId"))
                         for m in outcome.near)
        item = [kind, outcome.status, outcome.reason, outcome.message, outcome.key, record_id,
                enduser_id, changes, near, outcome.decision, entry_id, index, via]
        row = outcome.row  # only its keys are kept: decisions outlive the request
        if type(row) is dict:
            for k in SENT_KEYS:
                if k in row:
                    item += (k, row[k])
        append(tuple(item))
    return out


def row_keys(item: tuple) -> dict:
    flat = item[ROW:]
    return dict(zip(flat[::2], flat[1::2], strict=True))


class History:
    """One tenant's decisions, by the record they touched or the keys the row named.

    Callers hold the tenant's lock (the store's rule)."""

    def __init__(self) -> None:
        self._by_key: dict[str, tuple] = {}  # key -> one decision, or a tuple of them
        self.counts: Counter[tuple] = Counter()  # (kind, outcome, reason) -> rows

    def add(self, decisions: list[tuple]) -> None:
        counts = self.counts
        put = self._put
        for item in decisions:
            kind = item[KIND]
            counts[kind, item[STATUS], item[REASON]] += 1
            record_id = item[RECORD_ID]
            if record_id is not None:
                if kind != "activity":
                    put("id:" + record_id, item)
                continue
            flat = item[ROW:]
            if flat:
                for at in range(0, len(flat), 2):
                    name, value = flat[at], flat[at + 1]
                    if name in ("externalId", "email", "userId") and isinstance(value, str) \
                            and value:
                        put("email:" + value.strip().lower() if name == "email" else
                            "externalId:" + value, item)

    def _put(self, key: str, item: tuple) -> None:
        by_key = self._by_key
        items = by_key.get(key)
        if items is None:
            if len(by_key) >= MAX_KEYS:
                del by_key[next(iter(by_key))]
            by_key[key] = item  # most keys only ever get one
        elif type(items[0]) is str:  # one decision so far
            by_key[key] = (items, item)
        else:
            by_key[key] = (items + (item,))[-PER_KEY:]

    def about(self, keys) -> list[tuple]:
        """The decisions filed under any of ``keys`` ("id:…", "externalId:…", "email:…"),
        oldest first, each once."""
        seen, out = set(), []
        for key in keys:
            items = self._by_key.get(key)
            if items is None:
                continue
            for item in ((items,) if type(items[0]) is str else items):
                ident = (item[ENTRY], item[INDEX], item[KIND])
                if ident not in seen:
                    seen.add(ident)
                    out.append(item)
        out.sort(key=lambda item: (item[ENTRY], item[INDEX]))
        return out


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
    if item[CHANGES]:
        out["changed"] = {f: ({"from": a, "to": b} if f != "…" else a)
                          for f, a, b in item[CHANGES]}
    if item[NEAR]:
        out["nearMisses"] = [{"key": k, "value": v, "why": why, **({"recordId": r} if r else {})}
                             for k, v, why, r in item[NEAR]]
    if item[DETAIL]:
        out["detail"] = item[DETAIL]  # a rule's own note (e.g. an email attach)
    return out


def changed(old: dict, new: dict, limit: int = MAX_CHANGED) -> dict:
    """``{field: {"from", "to"}}`` for the fields that differ (custom fields one level down as
    ``custom.name``), at most ``limit`` of them, values shortened."""
    out: dict = {}
    for key in {**old, **new}:
        if key in SKIPPED_FIELDS:
            continue
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if key == "custom" and isinstance(before, dict) and isinstance(after, dict):
            for name in {**before, **after}:
                if before.get(name) != after.get(name):
                    out[f"custom.{name}"] = {"from": _short(before.get(name)),
                                             "to": _short(after.get(name))}
            continue
        out[key] = {"from": _short(before), "to": _short(after)}
    if len(out) > limit:
        kept = dict(list(out.items())[:limit])
        kept["…"] = f"{len(out) - limit} more fields"
        return kept
    return out


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
