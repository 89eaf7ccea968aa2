"""Settings: JSON-Schema validation with errors that name the field."""

from __future__ import annotations

import dataclasses

import pytest

from translator import Settings, SettingsError


def test_defaults():
    s = Settings.from_dict({"tenant_token": "tt"})
    assert s.tenant_token == "tt"
    assert s.subdomain == "api"
    assert s.api_token is None
    assert s.api_url == "https://api.planhat.com"
    assert s.analytics_url == "https://analytics.planhat.com"


@pytest.mark.parametrize("sub", ["api", "api-eu", "api-eu2", "api-eu3", "api-us2", "api-us4"])
def test_subdomain_picks_the_api_host(sub):
    s = Settings.from_dict({"tenant_token": "tt", "subdomain": sub})
    assert s.api_url == f"https://{sub}.planhat.com"
    assert s.analytics_url == "https://analytics.planhat.com"


def test_overrides_and_token():
    s = Settings.from_dict(
        {
            "tenant_token": "tt",
            "api_token": "secret",
            "api_url": "http://127.0.0.1:5000/",
            "analytics_url": "http://127.0.0.1:5001",
        }
    )
    assert s.api_token == "secret"
    assert s.api_url == "http://127.0.0.1:5000"
    assert s.analytics_url == "http://127.0.0.1:5001"


def test_frozen():
    s = Settings.from_dict({"tenant_token": "tt"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.tenant_token = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "field", "fragment"),
    [
        ({}, "settings.tenant_token", "required"),
        ({"subdomain": "api"}, "settings.tenant_token", "required"),
        ({"tenant_token": ""}, "settings.tenant_token", "non-empty"),
        ({"tenant_token": 42}, "settings.tenant_token", "is not of type 'string'"),
        ({"tenant_token": None}, "settings.tenant_token", "is not of type 'string'"),
        ({"tenant_token": "t", "subdomain": "api-xx"}, "settings.subdomain", "'api-xx' is not one"),
        ({"tenant_token": "t", "api_token": 7}, "settings.api_token", "not of type"),
        ({"tenant_token": "t", "api_url": "ftp://x"}, "settings.api_url", "does not match"),
        ({"tenant_token": "t", "apiKey": "x"}, "settings.apiKey", "'apiKey' was unexpected"),
    ],
)
def test_errors_name_the_field(data, field, fragment):
    with pytest.raises(SettingsError) as info:
        Settings.from_dict(data)
    assert info.value.field == field
    message = str(info.value)
    assert message.startswith(f"{field}: ")
    assert fragment in message


def test_bad_subdomain_message_lists_choices():
    with pytest.raises(SettingsError) as info:
        Settings.from_dict({"tenant_token": "t", "subdomain": "api-xx"})
    assert str(info.value) == (
        "settings.subdomain: 'api-xx' is not one of "
        "['api', 'api-eu', 'api-eu2', 'api-eu3', 'api-us2', 'api-us4']"
    )


@pytest.mark.parametrize("data", [None, [], "tenant", 3])
def test_non_mapping_is_a_settings_error(data):
    with pytest.raises(SettingsError) as info:
        Settings.from_dict(data)
    assert info.value.field == "settings"


def test_direct_construction_is_validated_too():
    with pytest.raises(SettingsError) as info:
        Settings(tenant_token="t", subdomain="nope")
    assert info.value.field == "settings.subdomain"


def test_to_dict_round_trips():
    s = Settings.from_dict({"tenant_token": "tt", "subdomain": "api-us4", "api_token": "k"})
    assert Settings.from_dict(s.to_dict()) == s
    assert s.to_dict()["api_url"] == "https://api-us4.planhat.com"
