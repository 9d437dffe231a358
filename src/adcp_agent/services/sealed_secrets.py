"""The database's side of ``adcp_agent.sealing``: at start-up, which key seals the
stored secrets; sealing what was stored before sealing came in (webhook secrets, push
credentials, tenants' secret-named settings)."""

from __future__ import annotations

from sqlmodel import col, or_, select

from adcp_agent.db.engine import Database
from adcp_agent.db.models import Tenant
from adcp_agent.db.models_admin import InstallationSetting
from adcp_agent.db.models_events import PushNotificationRegistration, WebhookEndpoint
from adcp_agent.sealing import SecretBox, SecretKeyError, is_sealed, seal_named
from adcp_agent.services.admin_models import is_secret

KEY_SETTING = "secret_key_id"


async def adopt_key(db: Database, box: SecretBox) -> int:
    """Make ``box``'s key the database's on its first start with sealing, sealing the
    secrets stored before (their number is returned); afterwards, refuse another key
    (``SecretKeyError``): it could open none of them. Run under the start-up lock."""
    async with db.transaction() as session:
        recorded = await session.get(InstallationSetting, KEY_SETTING)
        if recorded is not None:
            if recorded.value != box.key_id:
                raise SecretKeyError(
                    f"This database's secrets are sealed with key {recorded.value}; this "
                    f"server's key ({box.source}) is {box.key_id}. Every server on one "
                    "database needs the same key: set ADCP_AGENT_SECRET_KEY to it."
                )
            return 0
        sealed = 0
        for endpoint in (await session.exec(select(WebhookEndpoint))).all():
            if not is_sealed(endpoint.secret):
                endpoint.secret = box.seal(endpoint.secret)
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
                if value is not None and not is_sealed(value):
                    setattr(row, name, box.seal(value))
                    session.add(row)
                    sealed += 1
        for tenant in (await session.exec(select(Tenant))).all():
            config = seal_named(tenant.adapter_config, box, is_secret)
            features = seal_named(tenant.features, box, is_secret)
            if (config, features) != (tenant.adapter_config, tenant.features):
                tenant.adapter_config, tenant.features = config, features
                session.add(tenant)
                sealed += 1
        session.add(InstallationSetting(name=KEY_SETTING, value=box.key_id))
    return sealed
