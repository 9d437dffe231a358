"""The database's side of ``adcp_agent.sealing``: at start-up, which key seals the
stored secrets; sealing what was stored before sealing came in (webhook secrets, push
credentials, tenants' secret-named settings) and anew on a key rotation (those and
governance agents' credentials)."""

from __future__ import annotations

from sqlmodel import col, or_, select

from adcp_agent.db.engine import Database
from adcp_agent.db.models import Tenant
from adcp_agent.db.models_accounts import Account
from adcp_agent.db.models_admin import InstallationSetting
from adcp_agent.db.models_events import PushNotificationRegistration, WebhookEndpoint
from adcp_agent.sealing import SecretBox, SecretKeyError, seal_named
from adcp_agent.services.admin_models import is_secret

KEY_SETTING = "secret_key_id"


async def adopt_key(db: Database, box: SecretBox) -> int:
    """Make ``box``'s sealing key the database's, under the start-up lock, and return how
    many stored secrets were sealed anew: on the first start with sealing, what was
    stored in the clear; while ``box`` holds older keys (a rotation), whatever one of
    them sealed, sealed again with the new key. A server that does not hold the
    database's key refuses (``SecretKeyError``): it could open none of them."""
    async with db.transaction() as session:
        recorded = await session.get(InstallationSetting, KEY_SETTING)
        if recorded is not None and recorded.value == box.key_id and not box.retired:
            return 0
        # (While older keys are in the ring, every start seals again what a server not
        # yet restarted sealed with one of them, so they can be dropped afterwards.)
        if recorded is not None and not box.holds(recorded.value):
            raise SecretKeyError(
                f"This database's secrets are sealed with key {recorded.value}, which this "
                f"server ({box.source}, sealing key {box.key_id}) does not hold. Every server "
                "on one database needs the same keys: set ADCP_AGENT_SECRET_KEY to them."
            )
        sealed = 0
        for endpoint in (await session.exec(select(WebhookEndpoint))).all():
            secret = box.reseal(endpoint.secret)
            if secret != endpoint.secret:
                endpoint.secret = secret
                session.add(endpoint)
                sealed += 1
        pushes = select(PushNotificationRegistration).where(
            or_(
                col(PushNotificationRegistration.token).is_not(None),
                col(PushNotificationRegistration.auth_credentials).is_not(None),
            )
        )
        for row in (await session.exec(pushes)).all():
            for name in ("token", "auth_credentials"):
                value = getattr(row, name)
                if value is not None and (resealed := box.reseal(value)) != value:
                    setattr(row, name, resealed)
                    session.add(row)
                    sealed += 1
        governed = select(Account).where(col(Account.governance_credentials).is_not(None))
        for account in (await session.exec(governed)).all():
            assert account.governance_credentials is not None
            resealed = box.reseal(account.governance_credentials)
            if resealed != account.governance_credentials:
                account.governance_credentials = resealed
                session.add(account)
                sealed += 1
        for tenant in (await session.exec(select(Tenant))).all():
            config = seal_named(tenant.adapter_config, box, is_secret)
            features = seal_named(tenant.features, box, is_secret)
            if (config, features) != (tenant.adapter_config, tenant.features):
                tenant.adapter_config, tenant.features = config, features
                session.add(tenant)
                sealed += 1
        if recorded is None:
            session.add(InstallationSetting(name=KEY_SETTING, value=box.key_id))
        else:
            recorded.value = box.key_id
            session.add(recorded)
    return sealed
