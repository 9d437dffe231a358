"""The GAM adapter's tenant config: credential styles, env-var references, validation as
a tenant admin sees it (registry errors), and secrets that never show."""

from __future__ import annotations

import json
from typing import Any

import pytest
from adcp_agent_adapters.gam import GamConfig, GoogleAdManagerAdapter
from adcp_agent_adapters.gam.config import SUPPORTED_API_VERSIONS
from adcp_agent_adapters.gam.session import build_oauth2_client
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from googleads import oauth2

from adcp_agent.adapter_protocol import AdapterRegistry, AdServerAdapter
from adcp_agent.errors import AdcpError

BASE = {"network_code": "12345678", "trafficker_id": 42}
OAUTH = {"client_id": "cid", "client_secret": "s3cr3t-client", "refresh_token": "s3cr3t-refresh"}
OAUTH_ENV = {
    "client_id_env": "GAM_CLIENT_ID",
    "client_secret_env": "GAM_CLIENT_SECRET",
    "refresh_token_env": "GAM_REFRESH_TOKEN",
}


def service_account_json() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "client_email": "adcp@example-project.iam.gserviceaccount.com",
            "private_key": pem,
            "private_key_id": "k1",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )


def validate(config: dict[str, Any]) -> AdcpError:
    with pytest.raises(AdcpError) as err:
        AdapterRegistry().validate_config("google_ad_manager", config)
    return err.value


def test_registered_under_its_entry_point() -> None:
    registry = AdapterRegistry()
    assert "google_ad_manager" in registry.names()
    adapter = registry.create("google_ad_manager", {**BASE, **OAUTH})
    assert isinstance(adapter, GoogleAdManagerAdapter)
    assert isinstance(adapter, AdServerAdapter)
    assert adapter.config.api_version == SUPPORTED_API_VERSIONS[-1]


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        (BASE, "adapter_config", "credentials are required"),
        ({**BASE, "client_id": "c", "refresh_token": "r"}, "adapter_config", "client_secret"),
        ({**BASE, **OAUTH, "service_account_json_env": "GAM_KEY"}, "adapter_config", "not both"),
        ({**BASE, **OAUTH, "refresh_token_env": "GAM_RT"}, "adapter_config",
         "refresh_token or refresh_token_env"),
        ({**BASE, **OAUTH_ENV, "refresh_token_env": "gam-token"},
         "adapter_config.refresh_token_env", "environment variable"),
        ({**BASE, **OAUTH_ENV, "client_secret_env": "1SECRET"},
         "adapter_config.client_secret_env", "environment variable"),
        ({**BASE, **OAUTH, "api_version": "v201811"}, "adapter_config.api_version", "one of"),
        ({**BASE, **OAUTH, "network_timezone": "Mars/Olympus"},
         "adapter_config.network_timezone", "IANA"),
        ({**BASE, "service_account_json": "{}"}, "adapter_config.service_account_json",
         "client_email"),
        ({**BASE, **OAUTH, "server": "https://evil.example"}, "adapter_config.server", "Extra"),
        ({**OAUTH, "trafficker_id": 42}, "adapter_config.network_code", "required"),
    ],
)  # fmt: skip
def test_invalid_configs_name_the_problem(config: dict[str, Any], field: str, words: str) -> None:
    err = validate(config)
    assert err.code == "VALIDATION_ERROR"
    assert err.field == field
    assert words in err.message


def test_service_account_by_env_reference_is_enough() -> None:
    config = GamConfig.model_validate({**BASE, "service_account_json_env": "GAM_SA_KEY"})
    assert config.credential_style == "service_account"


def test_secrets_never_show_in_repr_or_dumps() -> None:
    config = GamConfig.model_validate({**BASE, **OAUTH})
    for text in (repr(config), str(config), config.model_dump_json()):
        assert "s3cr3t" not in text


def test_env_references_resolve_when_the_client_is_built() -> None:
    config = GamConfig.model_validate({**BASE, **OAUTH_ENV})
    env = {"GAM_CLIENT_ID": "cid", "GAM_CLIENT_SECRET": "from-env", "GAM_REFRESH_TOKEN": "rt-env"}
    client = build_oauth2_client(config, env)
    assert isinstance(client, oauth2.GoogleRefreshTokenClient)
    assert client.creds.refresh_token == "rt-env"
    assert client.creds.client_secret == "from-env"
    assert client.creds.token is None  # nothing was fetched from Google


def test_missing_env_variable_is_a_configuration_error_naming_it() -> None:
    config = GamConfig.model_validate({**BASE, **OAUTH_ENV})
    with pytest.raises(AdcpError) as err:
        build_oauth2_client(config, {"GAM_CLIENT_ID": "cid", "GAM_CLIENT_SECRET": "x"})
    assert err.value.code == "CONFIGURATION_ERROR"
    assert err.value.recovery == "terminal"
    assert err.value.field == "adapter_config.refresh_token_env"
    assert "GAM_REFRESH_TOKEN" in err.value.message


def test_service_account_key_builds_scoped_credentials_offline() -> None:
    raw = service_account_json()
    config = GamConfig.model_validate({**BASE, "service_account_json_env": "GAM_SA_KEY"})
    client = build_oauth2_client(config, {"GAM_SA_KEY": raw})
    assert isinstance(client, oauth2.GoogleCredentialsClient)
    creds = client.creds
    assert creds.service_account_email == "adcp@example-project.iam.gserviceaccount.com"
    assert creds.scopes == ["https://www.googleapis.com/auth/dfp"]
    assert creds.token is None


def test_unparseable_key_from_env_is_a_configuration_error() -> None:
    config = GamConfig.model_validate({**BASE, "service_account_json_env": "GAM_SA_KEY"})
    with pytest.raises(AdcpError) as err:
        build_oauth2_client(config, {"GAM_SA_KEY": "not json"})
    assert (err.value.code, err.value.field) == (
        "CONFIGURATION_ERROR",
        "adapter_config.service_account_json_env",
    )
    assert "not json" not in err.value.message
