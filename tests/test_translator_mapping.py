"""translate(): every mapping row and every skip reason, through the public interface."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from translator import InvalidCall, PlanhatRequest, Settings, Skip, translate, validate_call

S = Settings.from_dict({"tenant_token": "tt-1", "api_token": "tok"})
S_EU_NO_TOKEN = Settings.from_dict({"tenant_token": "tt-1", "subdomain": "api-eu"})
API = "https://api.planhat.com"
AN = "https://analytics.planhat.com"
JSON = {"Content-Type": "application/json"}
AUTH = {"Content-Type": "application/json", "Authorization": "Bearer tok"}


def one(call, settings=S) -> PlanhatRequest:
    out = translate(call, settings)
    assert isinstance(out, list), out
    assert len(out) == 1, out
    return out[0]


def skip(call, settings=S) -> Skip:
    out = translate(call, settings)
    assert isinstance(out, Skip), out
    return out


def sdk_call(kind: str, **fields):
    """A payload shaped like analytics-python sends it (None kept, version "1.1"/2)."""
    call = {
        "type": kind,
        "messageId": "4f2c6f0e-0000-4000-8000-000000000001",
        "timestamp": "2024-05-01T10:00:00.000000+00:00",
        "sentAt": "2024-05-01T10:00:01.000000+00:00",
        "anonymousId": None,
        "userId": "u-1",
        "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
        "integrations": {},
        "version": "1.1",
    }
    call.update(fields)
    return call


# ----------------------------------------------------------------------------- identify


def test_identify_full_mapping():
    call = sdk_call(
        "identify",
        traits={
            "email": "ann@acme.io",
            "firstName": "Ann",
            "lastName": "Lee",
            "title": "CTO",
            "phone": "+1 555",
            "companyId": "acme",
            "plan": "pro",
            "logins": 3,
            "address": {"city": "Oslo"},
        },
    )
    req = one(call)
    assert (req.method, req.url, req.path, req.host) == (
        "PUT",
        f"{API}/endusers",
        "/endusers",
        "api",
    )
    assert req.kind == "enduser" and req.call_type == "identify"
    assert req.headers == AUTH
    assert req.body == [
        {
            "externalId": "u-1",
            "email": "ann@acme.io",
            "name": "Ann Lee",
            "firstName": "Ann",
            "lastName": "Lee",
            "position": "CTO",
            "phone": "+1 555",
            "companyId": "extid-acme",
            "custom": {"plan": "pro", "logins": 3, "address": {"city": "Oslo"}},
            "source": "Segment",
        }
    ]


def test_identify_snake_case_traits():
    req = one(
        sdk_call(
            "identify",
            traits={"first_name": "Bo", "last_name": "Ek", "company_id": 77, "created_at": "x"},
        )
    )
    assert req.body == [
        {
            "externalId": "u-1",
            "name": "Bo Ek",
            "firstName": "Bo",
            "lastName": "Ek",
            "companyId": "extid-77",
            "custom": {"created_at": "x"},
            "source": "Segment",
        }
    ]


def test_identify_name_wins_over_first_last_and_only_present_keys():
    req = one({"type": "identify", "userId": "u", "traits": {"name": "Full", "firstName": "F"}})
    assert req.body == [{"externalId": "u", "name": "Full", "firstName": "F", "source": "Segment"}]


def test_identify_minimal_has_only_external_id_and_source():
    req = one({"type": "identify", "userId": "u", "traits": {"email": None, "plan": None}})
    assert req.body == [{"externalId": "u", "source": "Segment"}]


def test_identify_traits_id_and_email_only():
    req = one({"type": "identify", "anonymousId": "a", "traits": {"id": 12}})
    assert req.body == [{"externalId": "12", "source": "Segment"}]
    req = one({"type": "identify", "anonymousId": "a", "traits": {"email": "x@y.z"}})
    assert req.body == [{"email": "x@y.z", "source": "Segment"}]


@pytest.mark.parametrize(
    ("traits", "context", "expected"),
    [
        ({"companyId": "a", "company_id": "b"}, {"groupId": "d"}, "extid-a"),
        ({"company_id": "b", "company": {"id": "c"}}, {"groupId": "d"}, "extid-b"),
        ({"company": {"id": "c"}}, {"groupId": "d"}, "extid-c"),
        ({}, {"groupId": "d"}, "extid-d"),
    ],
)
def test_identify_company_reference_precedence(traits, context, expected):
    req = one({"type": "identify", "userId": "u", "traits": traits, "context": context})
    row = req.body[0]
    assert row["companyId"] == expected
    assert "company" not in row.get("custom", {})
    assert "company_id" not in row.get("custom", {})


def test_identify_company_object_keeps_name_and_plan_in_custom():
    req = one({"type": "identify", "userId": "u", "traits": {
        "company": {"id": "c", "name": "C Inc", "plan": "pro", "employee_count": 12,
                    "industry": None}}})
    row = req.body[0]
    assert row["companyId"] == "extid-c"
    assert row["custom"] == {"company": "C Inc", "companyPlan": "pro",
                             "companyEmployeeCount": 12}


def test_identify_trait_named_like_a_company_field_wins():
    req = one({"type": "identify", "userId": "u", "traits": {
        "company": {"name": "C Inc", "plan": "pro"}, "companyPlan": "enterprise"}})
    assert req.body[0]["custom"] == {"company": "C Inc", "companyPlan": "enterprise"}
    assert "companyId" not in req.body[0]


def test_identify_company_as_plain_string_stays_custom():
    req = one({"type": "identify", "userId": "u", "traits": {"company": "Acme"}})
    assert req.body == [{"externalId": "u", "custom": {"company": "Acme"}, "source": "Segment"}]


def test_identify_with_the_seed_settings_alone_goes_to_the_dock():
    """Tenant Token and subdomain only (the seeds' settings): delivered as Segment's cloud
    does, the call as given to /dock/segment with Basic tenant_token:."""
    call = {"type": "identify", "userId": "u", "traits": {"email": "a@b.co"}}
    req = one(call, S_EU_NO_TOKEN)
    assert S_EU_NO_TOKEN.delivery == "dock"
    assert (req.method, req.url, req.kind) == ("POST", f"{AN}/dock/segment", "dock")
    assert req.body == call
    assert req.headers == {**JSON, "Authorization": "Basic dHQtMTo="}  # "tt-1:"


def test_dock_keeps_the_skips_segment_would_not_send():
    assert translate({"type": "screen", "userId": "u"}, S_EU_NO_TOKEN).reason == "unsupported_call"
    filtered = {"type": "identify", "userId": "u", "integrations": {"Planhat": False}}
    assert translate(filtered, S_EU_NO_TOKEN).reason == "filtered"
    assert translate({"type": "track", "event": "x"}, S_EU_NO_TOKEN).reason == "no_identifier"
    assert translate({"type": "track", "userId": "u"}, S_EU_NO_TOKEN).reason == "invalid_call"


def test_identify_overridden_base_url():
    s = Settings.from_dict({"tenant_token": "t", "api_token": "k",
                            "api_url": "http://127.0.0.1:8000/"})
    assert one({"type": "identify", "userId": "u"}, s).url == "http://127.0.0.1:8000/endusers"
    dock = Settings.from_dict({"tenant_token": "t", "analytics_url": "http://127.0.0.1:8001/"})
    assert one({"type": "identify", "userId": "u"}, dock).url == "http://127.0.0.1:8001/dock/segment"


# ----------------------------------------------------------------------------- engage


def engage_identify(cls: str, key: str, value, user="u-9"):
    return {
        "type": "identify",
        "userId": user,
        "traits": {key: value},
        "context": {
            "personas": {
                "computation_class": cls,
                "computation_id": "aud_1",
                "computation_key": key,
                "namespace": "spa_1",
                "space_id": "spa_1",
            }
        },
        "integrations": {"All": False, "Planhat": True},
        "version": 2,
    }


def test_engage_audience_entered_then_exited():
    first = one(engage_identify("audience", "order_completed_last_30days", True))
    second = one(engage_identify("audience", "order_completed_last_30days", False))
    for req, value in ((first, True), (second, False)):
        assert req.method == "PUT" and req.url == f"{API}/endusers"
        assert req.body == [
            {
                "externalId": "u-9",
                "custom": {"order_completed_last_30days": value},
                "source": "Segment",
            }
        ]


def test_engage_audience_value_is_coerced_to_boolean():
    req = one(engage_identify("audience", "vip", "false"))
    assert req.body[0]["custom"] == {"vip": False}


def test_engage_journey_step_prefixed_key():
    key = "j_o_onboarding__step_1_welcome"
    req = one(engage_identify("journey_step", key, True))
    assert req.body[0]["custom"] == {key: True}


@pytest.mark.parametrize(
    "value", [450.0, 3, "gold", True, False, ["a", "b"]], ids=lambda v: type(v).__name__
)
def test_engage_computed_trait_value_types(value):
    for cls in ("trait", "computed_trait"):
        req = one(engage_identify(cls, "total_revenue_180_days", value))
        assert req.body[0]["custom"] == {"total_revenue_180_days": value}
        assert type(req.body[0]["custom"]["total_revenue_180_days"]) is type(value)


@pytest.mark.parametrize(
    ("event", "value", "expected"),
    [
        ("Audience Entered", True, True),
        ("Audience Exited", False, False),
        ("Audience Entered", None, True),
        ("Audience Exited", None, False),
    ],
)
def test_audience_tracks_become_enduser_upserts(event, value, expected):
    props = {"audience_key": "power_users"}
    if value is not None:
        props["power_users"] = value
    call = {
        "type": "track",
        "event": event,
        "userId": "u-3",
        "properties": props,
        "context": {"traits": {"email": "p@x.io"}},
    }
    req = one(call)
    assert (req.method, req.url, req.kind, req.call_type) == (
        "PUT",
        f"{API}/endusers",
        "enduser",
        "track",
    )
    assert req.body == [
        {
            "externalId": "u-3",
            "email": "p@x.io",
            "custom": {"power_users": expected},
            "source": "Segment",
        }
    ]


def test_audience_track_without_identifier_is_skipped():
    call = {
        "type": "track",
        "event": "Audience Entered",
        "anonymousId": "a",
        "properties": {"audience_key": "k", "k": True},
    }
    assert skip(call).reason == "no_identifier"


# ----------------------------------------------------------------------------- track / page


def test_track_activity():
    call = sdk_call(
        "track",
        event="Order Completed",
        properties={"revenue": 10.5, "currency": "EUR"},
        context={"traits": {"email": "ann@acme.io"}, "groupId": "acme"},
        version=2,
    )
    req = one(call)
    assert (req.method, req.url, req.path, req.host) == (
        "POST",
        f"{AN}/analytics/tt-1",
        "/analytics/tt-1",
        "analytics",
    )
    assert req.kind == "activity" and req.call_type == "track"
    assert req.headers == JSON  # no bearer on the open tracking host
    assert req.body == {
        "action": "Order Completed",
        "externalId": "u-1",
        "email": "ann@acme.io",
        "companyExternalId": "acme",
        "date": "2024-05-01T10:00:00.000000+00:00",
        "info": {"revenue": 10.5, "currency": "EUR"},
        "weight": 1,
        "source": "Segment",
    }


def test_track_minimal_omits_absent_keys_and_uses_top_level_traits_email():
    req = one({"type": "track", "event": "E", "traits": {"email": "t@x.io"}})
    assert req.body == {"action": "E", "email": "t@x.io", "weight": 1, "source": "Segment"}


def test_track_company_reference_in_identify_order():
    """context.traits' company id, else context.groupId: the order identify uses."""
    req = one({"type": "track", "event": "E", "userId": "u",
               "context": {"traits": {"company": {"id": 7}}}})
    assert req.body["companyExternalId"] == "7"
    req = one({"type": "track", "event": "E", "userId": "u",
               "context": {"groupId": "g", "traits": {"companyId": "c"}}})
    assert req.body["companyExternalId"] == "c"
    req = one({"type": "track", "event": "E", "userId": "u", "context": {"groupId": 5}})
    assert req.body["companyExternalId"] == "5"


def test_page_name_and_category():
    call = sdk_call(
        "page", name="Pricing", category="Docs", properties={"path": "/p", "title": "T"}
    )
    req = one(call)
    assert req.url == f"{AN}/analytics/tt-1" and req.call_type == "page"
    assert req.body["action"] == "Viewed Pricing Page"
    assert req.body["info"] == {"path": "/p", "title": "T", "category": "Docs"}


@pytest.mark.parametrize(
    ("props", "action"),
    [
        ({"name": "N", "title": "T", "path": "/p"}, "Viewed N Page"),
        ({"title": "T", "path": "/p"}, "Viewed T Page"),
        ({"path": "/p"}, "Viewed /p Page"),
        ({}, "Viewed Page"),
    ],
)
def test_page_name_fallbacks(props, action):
    req = one(sdk_call("page", name=None, category=None, properties=props))
    assert req.body["action"] == action
    assert "category" not in req.body.get("info", {})


def test_page_category_inside_properties():
    req = one({"type": "page", "userId": "u", "properties": {"category": "C", "name": "N"}})
    assert req.body["info"] == {"category": "C", "name": "N"}


# ----------------------------------------------------------------------------- group / alias


def test_group_with_user_upserts_company_then_attaches():
    call = sdk_call("group", groupId="acme/1", traits={"name": "Acme", "plan": "ent", "id": "x"})
    reqs = translate(call, S)
    assert [(r.method, r.url, r.kind) for r in reqs] == [
        ("PUT", f"{API}/companies", "company"),
        ("PUT", f"{API}/endusers/extid-u-1", "attach"),
    ]
    assert reqs[0].body == [  # traits.id is the sender's id of the group: kept in custom
        {"externalId": "acme/1", "name": "Acme", "custom": {"plan": "ent", "id": "x"},
         "source": "Segment"}
    ]
    assert reqs[1].body == {"companyId": "extid-acme/1"}
    assert all(r.headers == AUTH and r.call_type == "group" for r in reqs)


def test_group_without_name_updates_the_company_and_creates_it_named_by_its_id_only_if_new():
    reqs = translate({"type": "group", "anonymousId": "a", "groupId": 42,
                      "traits": {"id": 42, "plan": "pro"}}, S)
    assert len(reqs) == 1
    update = reqs[0]
    assert (update.method, update.url, update.kind) == (
        "PUT", f"{API}/companies/extid-42", "company_update")
    assert update.body == {"custom": {"plan": "pro"}, "source": "Segment"}  # no name
    assert update.fallback.kind == "company" and update.fallback.body == [
        {"externalId": "42", "name": "42", "custom": {"plan": "pro"}, "source": "Segment"}]


def test_alias():
    req = one(sdk_call("alias", previousId="old id/1", userId="new-1"))
    assert (req.method, req.url, req.path, req.kind) == (
        "PUT",
        f"{API}/endusers/extid-old%20id%2F1",
        "/endusers/extid-old%20id%2F1",
        "alias",
    )
    assert req.body == {"externalId": "new-1"}
    assert req.headers == AUTH


def test_attach_path_is_quoted():
    reqs = translate({"type": "group", "groupId": "g", "userId": "a b?c"}, S)
    assert reqs[1].url == f"{API}/endusers/extid-a%20b%3Fc"


# ----------------------------------------------------------------------------- skips


def test_screen_is_unsupported():
    assert skip(sdk_call("screen", name="Home")).reason == "unsupported_call"


@pytest.mark.parametrize(
    "call",
    [
        {"type": "identify", "anonymousId": "a", "traits": {"name": "No Id"}},
        {"type": "identify", "anonymousId": "a", "traits": {"email": ""}},
        {"type": "track", "event": "E", "anonymousId": "a"},
        {"type": "page", "anonymousId": "a", "name": "P"},
        {"type": "track", "event": "E", "userId": None, "anonymousId": "a"},
    ],
)
def test_no_identifier(call):
    assert skip(call).reason == "no_identifier"


@pytest.mark.parametrize(
    "integrations",
    [
        {"Planhat": False},
        {"All": False},
        {"All": False, "Planhat": False},
        {"All": True, "Planhat": False},
        {"All": False, "Salesforce": True},
    ],
)
def test_filtered(integrations):
    call = {"type": "identify", "userId": "u", "integrations": integrations}
    assert skip(call).reason == "filtered"


@pytest.mark.parametrize(
    "integrations",
    [
        None,
        {},
        {"All": True},
        {"All": False, "Planhat": True},
        {"All": False, "Planhat": {"someOption": 1}},
        {"All": False, "Planhat": {}},
        {"planhat": False},  # keys are case-sensitive
    ],
)
def test_not_filtered(integrations):
    call = {"type": "identify", "userId": "u", "integrations": integrations}
    assert isinstance(translate(call, S), list)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("not a call", "call: 'not a call' is not of type 'object'"),
        (None, "call: None is not of type 'object'"),
        ({}, "call.type: 'type' is a required property"),
        ({"type": "Identify"}, "call.type: 'Identify' is not one of"),
        ({"type": "track", "userId": "u"}, "call.event: 'event' is a required property"),
        ({"type": "track", "userId": "u", "event": None}, "call.event: None is not of type"),
        ({"type": "track", "userId": "u", "event": ""}, "call.event: '' should be non-empty"),
        ({"type": "group", "userId": "u"}, "call.groupId: 'groupId' is a required property"),
        ({"type": "group", "groupId": None}, "call.groupId:"),
        ({"type": "alias", "userId": "u"}, "call.previousId: 'previousId' is a required"),
        ({"type": "alias", "previousId": "p"}, "call.userId: 'userId' is a required"),
        ({"type": "identify", "userId": "u", "traits": []}, "call.traits: [] is not of type"),
        ({"type": "identify", "userId": {"a": 1}}, "call.userId:"),
        ({"type": "identify", "userId": "u", "context": {"traits": 5}}, "call.context.traits:"),
    ],
)
def test_invalid_call_is_a_skip_with_the_message(call, message):
    s = skip(call)
    assert s.reason == "invalid_call"
    assert s.detail.startswith(message)


# ----------------------------------------------------------------------------- validate_call


def test_validate_call_normalises_and_keeps_input():
    call = sdk_call(
        "page", name=None, category=None, properties={"a": None}, userId=5, context=None
    )
    before = copy.deepcopy(call)
    out = validate_call(call)
    assert call == before  # input untouched
    assert "anonymousId" not in out and "name" not in out and "category" not in out
    assert "context" not in out
    assert out["userId"] == "5"
    assert out["properties"] == {"a": None}
    assert out["version"] == "1.1"


@pytest.mark.parametrize("version", [2, "1.1", None])
def test_versions_accepted(version):
    assert validate_call({"type": "identify", "userId": "u", "version": version})["type"]


def test_unknown_top_level_keys_allowed():
    out = validate_call({"type": "identify", "userId": "u", "channel": "server", "_meta": {"x": 1}})
    assert out["_meta"] == {"x": 1}


def test_invalid_call_exception_fields():
    bad = {"type": "track", "userId": "u", "event": None}
    with pytest.raises(InvalidCall) as info:
        validate_call(bad)
    assert info.value.field == "call.event"
    assert info.value.call is bad
    assert str(info.value) == "call.event: None is not of type 'string'"
    with pytest.raises(InvalidCall) as info:
        validate_call([1, 2])
    assert info.value.field == "call"


def test_real_sdk_payloads_of_every_type_validate():
    calls = [
        sdk_call("identify", traits={"email": "a@b.c"}),
        sdk_call("track", event="E", properties={}),
        sdk_call("page", name=None, category=None, properties={}),
        sdk_call("screen", name=None, category=None, properties={}),
        sdk_call("group", groupId="g", traits={}),
        sdk_call("alias", previousId="p"),
    ]
    for call in calls:
        assert validate_call(call)["type"] == call["type"]


# ----------------------------------------------------------------------------- purity


def test_translate_is_deterministic_and_does_not_mutate():
    call = sdk_call("identify", traits={"email": "a@b.c", "tags": ["x"]})
    before = copy.deepcopy(call)
    first = translate(call, S)
    second = translate(call, S)
    assert first == second
    assert call == before
    first[0].body[0]["custom"]["tags"].append("y")
    assert call == before


def test_body_bytes_is_json():
    req = one({"type": "identify", "userId": "u", "traits": {"name": "Zoë"}})
    assert json.loads(req.body_bytes()) == req.body


def test_translator_imports_no_web_framework():
    code = (
        "import sys, translator, translator.destination, translator.transport;"
        "bad=[m for m in ('flask','werkzeug','mock_planhat') if m in sys.modules];"
        "print(','.join(bad) or 'clean')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "clean"


# ----------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize(
    ("call", "external_id", "custom"),
    [
        ({"userId": "u", "user_id": "top", "traits": {"user_id": "t", "id": "i"}}, "u",
         {"user_id": "t", "id": "i"}),
        ({"anonymousId": "a", "user_id": "top", "traits": {"user_id": "t", "id": "i"}}, "top",
         {"user_id": "t", "id": "i"}),
        ({"anonymousId": "a", "traits": {"user_id": "t", "id": "i"}}, "t", {"id": "i"}),
        ({"anonymousId": "a", "traits": {"id": "i"}}, "i", None),
        ({"anonymousId": "a", "traits": {"user_id": 42}}, "42", None),
        ({"anonymousId": "a", "traits": {"user_id": 42.0}}, "42", None),
        ({"userId": 7, "traits": {}}, "7", None),
    ],
    ids=["userId", "top-level-user_id", "traits.user_id", "traits.id", "int", "float", "num"],
)
def test_identify_external_id_order_and_the_chosen_key_leaves_custom(call, external_id, custom):
    """The seeds map user_id to externalId; Planhat takes userId/user_id, then traits.id."""
    row = one({"type": "identify", **call}).body[0]
    assert row["externalId"] == external_id
    assert row.get("custom") == custom


def test_track_takes_user_id_like_identify():
    req = one({"type": "track", "event": "E", "anonymousId": "a", "user_id": 5})
    assert req.body["externalId"] == "5"
    req = one({"type": "track", "event": "E", "anonymousId": "a",
               "context": {"traits": {"user_id": "t"}}})
    assert req.body["externalId"] == "t"


def test_numeric_ids_are_the_same_user_everywhere():
    ids = {one({"type": "identify", "userId": v}).body[0]["externalId"] for v in (12, 12.0, "12")}
    ids |= {one({"type": "track", "event": "E", "userId": v}).body["externalId"]
            for v in (12, 12.0)}
    ids |= {translate({"type": "group", "userId": 12, "groupId": 3}, S)[1].path[-2:]}
    assert ids == {"12"}


# ----------------------------------------------------------------------------- group domains


@pytest.mark.parametrize(
    ("traits", "domains", "custom"),
    [
        ({"website": "https://www.globex.com/"}, ["globex.com"], None),
        ({"website": "HTTP://Globex.COM:8080/about?x=1"}, ["globex.com"], None),
        ({"domain": "globex.com", "domains": ["globex.de", "www.globex.com"]},
         ["globex.com", "globex.de"], None),
        ({"domains": "globex.io"}, ["globex.io"], None),
        ({"website": "not a web address", "domain": "globex.com"}, ["globex.com"],
         {"website": "not a web address"}),
        ({"domains": ["globex.com", 5]}, ["globex.com"], {"domains": ["globex.com", 5]}),
        ({"website": "", "industry": "Software"}, None, {"website": "", "industry": "Software"}),
    ],
    ids=["url", "url-port-path", "domain+domains", "domains-string", "bad-kept", "bad-item",
         "empty"],
)
def test_group_web_address_traits_fill_domains(traits, domains, custom):
    row = translate({"type": "group", "anonymousId": "a", "groupId": "g",
                     "traits": {"name": "G", **traits}}, S)[0].body[0]
    assert row.get("domains") == domains
    assert row.get("custom") == custom
