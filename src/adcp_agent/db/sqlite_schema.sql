CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
CREATE TABLE audit_logs (
	id INTEGER NOT NULL, 
	tenant_id VARCHAR(64), 
	principal_id VARCHAR(64), 
	actor VARCHAR(100) NOT NULL, 
	action VARCHAR(100) NOT NULL, 
	target_type VARCHAR(40) NOT NULL, 
	target_id VARCHAR(128) NOT NULL, 
	success BOOLEAN NOT NULL, 
	"before" JSON, 
	"after" JSON, 
	details JSON NOT NULL, 
	created_at DATETIME NOT NULL, revision INTEGER, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_audit_logs_action ON audit_logs (action);
CREATE INDEX ix_audit_logs_tenant_created ON audit_logs (tenant_id, created_at);
CREATE TABLE tenants (
	tenant_id VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	subdomain VARCHAR(63) NOT NULL, 
	ad_server VARCHAR(40) NOT NULL, 
	adapter_config JSON NOT NULL, 
	features JSON NOT NULL, 
	publisher_domains JSON NOT NULL, 
	public_discovery BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	deleted_at DATETIME, catalog_version INTEGER DEFAULT '0' NOT NULL, 
	PRIMARY KEY (tenant_id)
);
CREATE UNIQUE INDEX ix_tenants_subdomain ON tenants (subdomain);
CREATE TABLE authorized_properties (
	id INTEGER NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	property_id VARCHAR(128) NOT NULL, 
	property_type VARCHAR(40) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	publisher_domain VARCHAR(253) NOT NULL, 
	identifiers JSON NOT NULL, 
	tags JSON NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	UNIQUE (tenant_id, property_id)
);
CREATE INDEX ix_authorized_properties_tenant_id ON authorized_properties (tenant_id);
CREATE TABLE creative_formats (
	id INTEGER NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	format_id VARCHAR(128) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	description VARCHAR NOT NULL, 
	kind VARCHAR(20) NOT NULL, 
	width INTEGER, 
	height INTEGER, 
	durations_s JSON NOT NULL, 
	mime_types JSON NOT NULL, 
	max_file_kb INTEGER, 
	PRIMARY KEY (id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	UNIQUE (tenant_id, format_id)
);
CREATE INDEX ix_creative_formats_tenant_id ON creative_formats (tenant_id);
CREATE TABLE principals (
	principal_id VARCHAR(64) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	token_hash VARCHAR(64) NOT NULL, 
	token_hint VARCHAR(16) NOT NULL, 
	role VARCHAR(20) NOT NULL, 
	platform_mappings JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	revoked_at DATETIME, 
	PRIMARY KEY (principal_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id)
);
CREATE INDEX ix_principals_tenant_id ON principals (tenant_id);
CREATE UNIQUE INDEX ix_principals_token_hash ON principals (token_hash);
CREATE TABLE products (
	id INTEGER NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	product_id VARCHAR(128) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	description VARCHAR NOT NULL, 
	keywords JSON NOT NULL, 
	channels JSON NOT NULL, 
	delivery_type VARCHAR(20) NOT NULL, 
	format_ids JSON NOT NULL, 
	property_ids JSON NOT NULL, 
	countries JSON NOT NULL, 
	pricing_options JSON NOT NULL, 
	targeting JSON NOT NULL, 
	inventory JSON NOT NULL, 
	implementation_config JSON NOT NULL, 
	is_public BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	UNIQUE (tenant_id, product_id)
);
CREATE INDEX ix_products_tenant_id ON products (tenant_id);
CREATE TABLE signals (
	id INTEGER NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	signal_id VARCHAR(128) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	description VARCHAR NOT NULL, 
	signal_type VARCHAR(20) NOT NULL, 
	keywords JSON NOT NULL, 
	reach INTEGER NOT NULL, 
	coverage_percentage FLOAT NOT NULL, 
	cpm FLOAT NOT NULL, 
	data_provider VARCHAR(200) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	UNIQUE (tenant_id, signal_id)
);
CREATE INDEX ix_signals_tenant_id ON signals (tenant_id);
CREATE TABLE signal_activations (
	id INTEGER NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	principal_id VARCHAR(64) NOT NULL, 
	signal_id VARCHAR(128) NOT NULL, 
	destination_key VARCHAR(300) NOT NULL, 
	destination JSON NOT NULL, 
	activation_key JSON NOT NULL, 
	created_at DATETIME NOT NULL, governance_context VARCHAR, 
	PRIMARY KEY (id), 
	FOREIGN KEY(principal_id) REFERENCES principals (principal_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	UNIQUE (tenant_id, principal_id, signal_id, destination_key)
);
CREATE INDEX ix_signal_activations_tenant_id ON signal_activations (tenant_id);
CREATE TABLE accounts (
	account_id VARCHAR(64) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	advertiser VARCHAR(200), 
	status VARCHAR(20) NOT NULL, 
	brand_domain VARCHAR(253), 
	brand_id VARCHAR(128), 
	operator VARCHAR(253), 
	billing VARCHAR(20) NOT NULL, 
	billing_entity JSON, 
	payment_terms VARCHAR(20), 
	credit_limit FLOAT, 
	currency VARCHAR(3) NOT NULL, 
	sandbox BOOLEAN NOT NULL, 
	is_default BOOLEAN NOT NULL, 
	owner_principal_id VARCHAR(64), 
	natural_key VARCHAR(600), 
	setup_message VARCHAR, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, governance_url VARCHAR(2048), governance_scheme VARCHAR(20), governance_credentials VARCHAR, 
	PRIMARY KEY (account_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	UNIQUE (tenant_id, owner_principal_id, natural_key)
);
CREATE INDEX ix_accounts_tenant_id ON accounts (tenant_id);
CREATE TABLE account_principals (
	account_id VARCHAR(64) NOT NULL, 
	principal_id VARCHAR(64) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	PRIMARY KEY (account_id, principal_id), 
	FOREIGN KEY(account_id) REFERENCES accounts (account_id), 
	FOREIGN KEY(principal_id) REFERENCES principals (principal_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id)
);
CREATE INDEX ix_account_principals_tenant_id ON account_principals (tenant_id);
CREATE TABLE idempotency_records (
	id INTEGER NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	principal_id VARCHAR(64) NOT NULL, 
	tool VARCHAR(64) NOT NULL, 
	"key" VARCHAR(255) NOT NULL, 
	request_hash VARCHAR(64) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	response JSON, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, subject_id VARCHAR(64), 
	PRIMARY KEY (id), 
	UNIQUE (tenant_id, principal_id, tool, "key")
);
CREATE TABLE media_buys (
	media_buy_id VARCHAR(64) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	principal_id VARCHAR(64) NOT NULL, 
	account_id VARCHAR(64) NOT NULL, 
	buyer_ref VARCHAR(200), 
	brand JSON, 
	po_number VARCHAR(100), 
	state VARCHAR(20) NOT NULL, 
	guaranteed BOOLEAN NOT NULL, 
	start_time DATETIME NOT NULL, 
	end_time DATETIME NOT NULL, 
	total_budget FLOAT NOT NULL, 
	currency VARCHAR(3) NOT NULL, 
	pacing VARCHAR(20) NOT NULL, 
	daily_cap FLOAT, 
	ad_server VARCHAR(40) NOT NULL, 
	sandbox BOOLEAN NOT NULL, 
	external_order_id VARCHAR(128), 
	archived BOOLEAN NOT NULL, 
	revision INTEGER NOT NULL, 
	rejection_reason VARCHAR, 
	approved_by VARCHAR(100), 
	approved_at DATETIME, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, completion_announced_at DATETIME, update_lease VARCHAR(40), update_lease_until DATETIME, update_lease_undo JSON, canceled_at DATETIME, canceled_by VARCHAR(10), cancellation_reason VARCHAR(500), advertiser_industry VARCHAR(64), plan_id VARCHAR(255), governance_context VARCHAR, governance_check_id VARCHAR(255), governance_next_check DATETIME, governance_reported_until DATETIME, 
	PRIMARY KEY (media_buy_id), 
	FOREIGN KEY(account_id) REFERENCES accounts (account_id), 
	FOREIGN KEY(principal_id) REFERENCES principals (principal_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id)
);
CREATE INDEX ix_media_buys_account_id ON media_buys (account_id);
CREATE INDEX ix_media_buys_state ON media_buys (state);
CREATE INDEX ix_media_buys_tenant_principal ON media_buys (tenant_id, principal_id);
CREATE TABLE tasks (
	task_id VARCHAR(64) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	principal_id VARCHAR(64) NOT NULL, 
	task_type VARCHAR(40) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	media_buy_id VARCHAR(64), 
	message VARCHAR, 
	result JSON, 
	error JSON, 
	decided_by VARCHAR(100), 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (task_id), 
	FOREIGN KEY(principal_id) REFERENCES principals (principal_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id)
);
CREATE INDEX ix_tasks_media_buy_id ON tasks (media_buy_id);
CREATE INDEX ix_tasks_status ON tasks (status);
CREATE TABLE packages (
	package_id VARCHAR(64) NOT NULL, 
	media_buy_id VARCHAR(64) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	product_id VARCHAR(128) NOT NULL, 
	buyer_ref VARCHAR(200), 
	pricing_option_id VARCHAR(64) NOT NULL, 
	pricing_model VARCHAR(20) NOT NULL, 
	rate FLOAT NOT NULL, 
	guaranteed BOOLEAN NOT NULL, 
	budget FLOAT NOT NULL, 
	impressions_goal INTEGER, 
	pacing VARCHAR(20) NOT NULL, 
	paused BOOLEAN NOT NULL, 
	targeting JSON NOT NULL, 
	bid_adjustments JSON NOT NULL, 
	creative_ids JSON NOT NULL, 
	format_ids JSON NOT NULL, 
	external_line_id VARCHAR(128), 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, buy_state VARCHAR(20), flight_start DATETIME, flight_end DATETIME, buy_sandbox BOOLEAN, flight_start_s FLOAT GENERATED ALWAYS AS (((julianday(flight_start) - 2440587.5) * 86400.0)) VIRTUAL, flight_end_s FLOAT GENERATED ALWAYS AS (((julianday(flight_end) - 2440587.5) * 86400.0)) VIRTUAL, reserve_rate FLOAT GENERATED ALWAYS AS (CASE WHEN buy_state IN ('provisioning', 'pending_approval', 'live', 'paused') AND impressions_goal > 0 AND flight_end > flight_start THEN impressions_goal / (((julianday(flight_end) - 2440587.5) * 86400.0) - ((julianday(flight_start) - 2440587.5) * 86400.0)) END) VIRTUAL, canceled_at DATETIME, canceled_by VARCHAR(10), cancellation_reason VARCHAR(500), start_time DATETIME, end_time DATETIME, optimization_goals JSON, 
	PRIMARY KEY (package_id), 
	FOREIGN KEY(media_buy_id) REFERENCES media_buys (media_buy_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id)
);
CREATE INDEX ix_packages_media_buy_id ON packages (media_buy_id);
CREATE INDEX ix_packages_product_id ON packages (product_id);
CREATE TABLE creatives (
	id INTEGER NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	principal_id VARCHAR(64) NOT NULL, 
	account_id VARCHAR(64) NOT NULL, 
	creative_id VARCHAR(128) NOT NULL, 
	name VARCHAR(300) NOT NULL, 
	format_id VARCHAR(128) NOT NULL, 
	kind VARCHAR(20) NOT NULL, 
	assets JSON NOT NULL, 
	click_url VARCHAR(2048), 
	tags JSON NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	rejection_reason VARCHAR, 
	content_hash VARCHAR(64) NOT NULL, 
	external_ids JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, industry_identifiers JSON, provenance JSON, 
	PRIMARY KEY (id), 
	FOREIGN KEY(account_id) REFERENCES accounts (account_id), 
	FOREIGN KEY(principal_id) REFERENCES principals (principal_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	UNIQUE (tenant_id, principal_id, creative_id)
);
CREATE INDEX ix_creatives_status ON creatives (status);
CREATE TABLE creative_assignments (
	id INTEGER NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	creative_pk INTEGER NOT NULL, 
	package_id VARCHAR(64) NOT NULL, 
	weight FLOAT, 
	pushed BOOLEAN NOT NULL, 
	assigned_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(creative_pk) REFERENCES creatives (id), 
	FOREIGN KEY(package_id) REFERENCES packages (package_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	UNIQUE (creative_pk, package_id)
);
CREATE INDEX ix_creative_assignments_creative_pk ON creative_assignments (creative_pk);
CREATE INDEX ix_creative_assignments_package_id ON creative_assignments (package_id);
CREATE TABLE outbox_events (
	event_id VARCHAR(64) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	event_type VARCHAR(64) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	principal_id VARCHAR(64), 
	media_buy_id VARCHAR(64), 
	dedupe_key VARCHAR(200), 
	payload JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (event_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	UNIQUE (dedupe_key)
);
CREATE INDEX ix_outbox_events_event_type ON outbox_events (event_type);
CREATE INDEX ix_outbox_events_media_buy_id ON outbox_events (media_buy_id);
CREATE INDEX ix_outbox_events_status ON outbox_events (status);
CREATE INDEX ix_outbox_events_tenant_created ON outbox_events (tenant_id, created_at);
CREATE TABLE event_deliveries (
	delivery_id VARCHAR(64) NOT NULL, 
	event_id VARCHAR(64) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	channel VARCHAR(20) NOT NULL, 
	target_id VARCHAR(64), 
	url VARCHAR(2048) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at DATETIME NOT NULL, 
	lease_owner VARCHAR(120), 
	lease_expires_at DATETIME, 
	last_status_code INTEGER, 
	last_error VARCHAR(500), 
	delivered_at DATETIME, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (delivery_id), 
	FOREIGN KEY(event_id) REFERENCES outbox_events (event_id)
);
CREATE INDEX ix_event_deliveries_due ON event_deliveries (status, next_attempt_at);
CREATE INDEX ix_event_deliveries_event_id ON event_deliveries (event_id);
CREATE TABLE notification_drafts (
	draft_id VARCHAR(64) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	principal_id VARCHAR(64), 
	media_buy_id VARCHAR(64), 
	event_id VARCHAR(64) NOT NULL, 
	event_type VARCHAR(64) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	email_id VARCHAR(300), 
	sent_to JSON NOT NULL, 
	sent_at DATETIME, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (draft_id), 
	FOREIGN KEY(event_id) REFERENCES outbox_events (event_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id)
);
CREATE INDEX ix_notification_drafts_media_buy_id ON notification_drafts (media_buy_id);
CREATE TABLE sandbox_directives (
	id INTEGER NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	principal_id VARCHAR(64) NOT NULL, 
	account_id VARCHAR(64) NOT NULL, 
	tool VARCHAR(40) NOT NULL, 
	arm VARCHAR(20) NOT NULL, 
	task_id VARCHAR(64), 
	message VARCHAR, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(account_id) REFERENCES accounts (account_id), 
	FOREIGN KEY(principal_id) REFERENCES principals (principal_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	UNIQUE (tenant_id, principal_id, account_id, tool)
);
CREATE TRIGGER products_catalog_insert AFTER INSERT ON products BEGIN UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = NEW.tenant_id; END;
CREATE TRIGGER products_catalog_update AFTER UPDATE ON products BEGIN UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = NEW.tenant_id; UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = OLD.tenant_id; END;
CREATE TRIGGER products_catalog_delete AFTER DELETE ON products BEGIN UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = OLD.tenant_id; END;
CREATE TRIGGER creative_formats_catalog_insert AFTER INSERT ON creative_formats BEGIN UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = NEW.tenant_id; END;
CREATE TRIGGER creative_formats_catalog_update AFTER UPDATE ON creative_formats BEGIN UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = NEW.tenant_id; UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = OLD.tenant_id; END;
CREATE TRIGGER creative_formats_catalog_delete AFTER DELETE ON creative_formats BEGIN UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = OLD.tenant_id; END;
CREATE TRIGGER authorized_properties_catalog_insert AFTER INSERT ON authorized_properties BEGIN UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = NEW.tenant_id; END;
CREATE TRIGGER authorized_properties_catalog_update AFTER UPDATE ON authorized_properties BEGIN UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = NEW.tenant_id; UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = OLD.tenant_id; END;
CREATE TRIGGER authorized_properties_catalog_delete AFTER DELETE ON authorized_properties BEGIN UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = OLD.tenant_id; END;
CREATE TRIGGER signals_catalog_insert AFTER INSERT ON signals BEGIN UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = NEW.tenant_id; END;
CREATE TRIGGER signals_catalog_update AFTER UPDATE ON signals BEGIN UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = NEW.tenant_id; UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = OLD.tenant_id; END;
CREATE TRIGGER signals_catalog_delete AFTER DELETE ON signals BEGIN UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = OLD.tenant_id; END;
CREATE INDEX ix_media_buys_listing ON media_buys (tenant_id, principal_id, created_at, media_buy_id, state, start_time, end_time, sandbox, account_id);
CREATE INDEX ix_media_buys_completion_due ON media_buys (end_time) WHERE completion_announced_at IS NULL AND state IN ('live', 'paused');
CREATE TABLE installation_settings (
	name VARCHAR(64) NOT NULL, 
	value VARCHAR(200) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (name)
);
CREATE TABLE "webhook_endpoints" (
	webhook_id VARCHAR(64) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	url VARCHAR(2048) NOT NULL, 
	secret VARCHAR(1024) NOT NULL, 
	secret_hint VARCHAR(16) NOT NULL, 
	events JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	deleted_at DATETIME, 
	PRIMARY KEY (webhook_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id)
);
CREATE INDEX ix_webhook_endpoints_tenant_id ON webhook_endpoints (tenant_id);
CREATE INDEX ix_media_buys_leased ON media_buys (update_lease_until) WHERE update_lease IS NOT NULL;
CREATE INDEX ix_packages_reserving ON packages (tenant_id, product_id, buy_sandbox, flight_end_s, flight_start_s, reserve_rate, media_buy_id) WHERE reserve_rate IS NOT NULL AND guaranteed = 1;
CREATE INDEX ix_creatives_listing ON creatives (tenant_id, principal_id, updated_at);
CREATE INDEX ix_tasks_listing ON tasks (tenant_id, principal_id, created_at);
CREATE INDEX ix_creative_assignments_unpushed ON creative_assignments (tenant_id, pushed);
CREATE INDEX ix_creatives_created ON creatives (tenant_id, principal_id, created_at);
CREATE INDEX ix_audit_logs_target_revision ON audit_logs (target_id, revision);
CREATE TABLE reporting_webhooks (
	media_buy_id VARCHAR(64) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	principal_id VARCHAR(64) NOT NULL, 
	url VARCHAR(2048) NOT NULL, 
	token VARCHAR(8192), 
	auth_scheme VARCHAR(20), 
	auth_credentials VARCHAR(8192), 
	frequency VARCHAR(10) NOT NULL, 
	requested_metrics JSON, 
	sequence INTEGER NOT NULL, 
	period_start DATETIME NOT NULL, 
	next_due_at DATETIME, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (media_buy_id), 
	FOREIGN KEY(media_buy_id) REFERENCES media_buys (media_buy_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id)
);
CREATE INDEX ix_reporting_webhooks_due ON reporting_webhooks (next_due_at);
CREATE TABLE "push_notification_configs" (
	config_id VARCHAR(64) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	principal_id VARCHAR(64) NOT NULL, 
	media_buy_id VARCHAR(64), 
	task_type VARCHAR(40) NOT NULL, 
	task_id VARCHAR(64), 
	url VARCHAR(2048) NOT NULL, 
	operation_id VARCHAR(255), 
	token VARCHAR(8192), 
	auth_scheme VARCHAR(20), 
	auth_credentials VARCHAR(8192), 
	created_at DATETIME NOT NULL, 
	creative_ids JSON, 
	PRIMARY KEY (config_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id)
);
CREATE INDEX ix_push_notification_configs_media_buy_id ON push_notification_configs (media_buy_id);
CREATE TABLE event_sources (
	id INTEGER NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	account_id VARCHAR(64) NOT NULL, 
	event_source_id VARCHAR(255) NOT NULL, 
	name VARCHAR(255), 
	event_types JSON, 
	action_source VARCHAR(20), 
	allowed_domains JSON, 
	deleted_at DATETIME, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	FOREIGN KEY(account_id) REFERENCES accounts (account_id), 
	UNIQUE (tenant_id, account_id, event_source_id)
);
CREATE INDEX ix_event_sources_account_id ON event_sources (account_id);
CREATE TABLE conversion_events (
	id INTEGER NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	source_key INTEGER NOT NULL, 
	event_type VARCHAR(40) NOT NULL, 
	event_id VARCHAR(255) NOT NULL, 
	event_time DATETIME NOT NULL, 
	action_source VARCHAR(20), 
	value FLOAT, 
	click_id VARCHAR(200), 
	media_buy_id VARCHAR(64), 
	package_id VARCHAR(64), 
	received_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	FOREIGN KEY(source_key) REFERENCES event_sources (id), 
	UNIQUE (source_key, event_type, event_id)
);
CREATE INDEX ix_conversion_events_buy_time ON conversion_events (media_buy_id, event_time);
CREATE TRIGGER packages_flight_fill AFTER INSERT ON packages BEGIN UPDATE packages SET buy_state = (SELECT state FROM media_buys b WHERE b.media_buy_id = NEW.media_buy_id), flight_start = COALESCE(packages.start_time, (SELECT start_time FROM media_buys b WHERE b.media_buy_id = NEW.media_buy_id)), flight_end = COALESCE(packages.end_time, (SELECT end_time FROM media_buys b WHERE b.media_buy_id = NEW.media_buy_id)), buy_sandbox = (SELECT sandbox FROM media_buys b WHERE b.media_buy_id = NEW.media_buy_id) WHERE package_id = NEW.package_id; END;
CREATE TRIGGER packages_flight_move AFTER UPDATE OF media_buy_id, start_time, end_time ON packages BEGIN UPDATE packages SET buy_state = (SELECT state FROM media_buys b WHERE b.media_buy_id = NEW.media_buy_id), flight_start = COALESCE(packages.start_time, (SELECT start_time FROM media_buys b WHERE b.media_buy_id = NEW.media_buy_id)), flight_end = COALESCE(packages.end_time, (SELECT end_time FROM media_buys b WHERE b.media_buy_id = NEW.media_buy_id)), buy_sandbox = (SELECT sandbox FROM media_buys b WHERE b.media_buy_id = NEW.media_buy_id) WHERE package_id = NEW.package_id; END;
CREATE TRIGGER media_buys_flight_follow AFTER UPDATE ON media_buys WHEN NEW.state IS NOT OLD.state OR NEW.start_time IS NOT OLD.start_time OR NEW.end_time IS NOT OLD.end_time OR NEW.sandbox IS NOT OLD.sandbox BEGIN UPDATE packages SET buy_state = NEW.state, flight_start = COALESCE(packages.start_time, NEW.start_time), flight_end = COALESCE(packages.end_time, NEW.end_time), buy_sandbox = NEW.sandbox WHERE media_buy_id = NEW.media_buy_id; END;
CREATE INDEX ix_media_buys_governance_next_check ON media_buys (governance_next_check);
CREATE TABLE audiences (
	id INTEGER NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	account_id VARCHAR(64) NOT NULL, 
	audience_id VARCHAR(255) NOT NULL, 
	seller_id VARCHAR(40) NOT NULL, 
	name VARCHAR(255), 
	description VARCHAR(1000), 
	audience_type VARCHAR(20), 
	tags JSON, 
	consent_basis VARCHAR(30), 
	member_count INTEGER NOT NULL, 
	matched_count INTEGER NOT NULL, 
	match_breakdown JSON NOT NULL, 
	reach_share FLOAT NOT NULL, 
	last_synced_at DATETIME NOT NULL, 
	deleted_at DATETIME, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	FOREIGN KEY(account_id) REFERENCES accounts (account_id), 
	UNIQUE (tenant_id, account_id, audience_id)
);
CREATE INDEX ix_audiences_account_id ON audiences (account_id);
CREATE TABLE audience_members (
	audience_key INTEGER NOT NULL, 
	external_id VARCHAR(255) NOT NULL, 
	id_type VARCHAR(40) NOT NULL, 
	value VARCHAR(512) NOT NULL, 
	PRIMARY KEY (audience_key, external_id, id_type, value), 
	FOREIGN KEY(audience_key) REFERENCES audiences (id)
);
CREATE INDEX ix_audience_members_identifier ON audience_members (id_type, value);
CREATE TABLE publisher_identities (
	tenant_id VARCHAR(64) NOT NULL, 
	id_type VARCHAR(40) NOT NULL, 
	value VARCHAR(512) NOT NULL, 
	user_key VARCHAR(255) NOT NULL, 
	PRIMARY KEY (tenant_id, id_type, value, user_key), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id)
);
CREATE INDEX ix_publisher_identities_user ON publisher_identities (tenant_id, user_key);
CREATE TABLE delivery_watermarks (
	media_buy_id VARCHAR(64) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	materialised_until DATETIME NOT NULL, 
	adapter_synced_at DATETIME, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (media_buy_id), 
	FOREIGN KEY(media_buy_id) REFERENCES media_buys (media_buy_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id)
);
CREATE TABLE pacing_alerts (
	id INTEGER NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	principal_id VARCHAR(64) NOT NULL, 
	media_buy_id VARCHAR(64) NOT NULL, 
	day DATE NOT NULL, 
	kind VARCHAR(20) NOT NULL, 
	severity VARCHAR(20) NOT NULL, 
	pacing_index FLOAT NOT NULL, 
	expected_spend FLOAT NOT NULL, 
	actual_spend FLOAT NOT NULL, 
	message VARCHAR NOT NULL, 
	recommendation VARCHAR NOT NULL, 
	observed_at DATETIME NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(media_buy_id) REFERENCES media_buys (media_buy_id), 
	FOREIGN KEY(principal_id) REFERENCES principals (principal_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	UNIQUE (media_buy_id, day, kind)
);
CREATE INDEX ix_pacing_alerts_media_buy_id ON pacing_alerts (media_buy_id);
CREATE INDEX ix_pacing_alerts_principal_id ON pacing_alerts (principal_id);
CREATE TABLE delivery_hours (
	id INTEGER NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	media_buy_id VARCHAR(64) NOT NULL, 
	package_id VARCHAR(64) NOT NULL, 
	hour DATETIME NOT NULL, 
	source VARCHAR(20) NOT NULL, 
	impressions INTEGER NOT NULL, 
	clicks INTEGER NOT NULL, 
	completions INTEGER NOT NULL, 
	spend FLOAT NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(media_buy_id) REFERENCES media_buys (media_buy_id), 
	FOREIGN KEY(package_id) REFERENCES packages (package_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	UNIQUE (package_id, hour, source)
);
CREATE INDEX ix_delivery_hours_buy_hour ON delivery_hours (media_buy_id, hour);
CREATE TABLE performance_feedback (
	feedback_id VARCHAR(64) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	principal_id VARCHAR(64) NOT NULL, 
	media_buy_id VARCHAR(64) NOT NULL, 
	package_id VARCHAR(64), 
	creative_id VARCHAR(128), 
	period_start DATETIME NOT NULL, 
	period_end DATETIME NOT NULL, 
	performance_index FLOAT NOT NULL, 
	metric_type VARCHAR(40) NOT NULL, 
	feedback_source VARCHAR(40) NOT NULL, 
	feedback_type VARCHAR(40), 
	data JSON NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	received_at DATETIME NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (feedback_id), 
	FOREIGN KEY(media_buy_id) REFERENCES media_buys (media_buy_id), 
	FOREIGN KEY(package_id) REFERENCES packages (package_id), 
	FOREIGN KEY(principal_id) REFERENCES principals (principal_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id)
);
CREATE INDEX ix_performance_feedback_media_buy_id ON performance_feedback (media_buy_id);
CREATE TABLE tracking_events (
	id INTEGER NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	principal_id VARCHAR(64) NOT NULL, 
	kind VARCHAR(20) NOT NULL, 
	event_id VARCHAR(200) NOT NULL, 
	media_buy_id VARCHAR(64) NOT NULL, 
	package_id VARCHAR(64) NOT NULL, 
	creative_id VARCHAR(128), 
	occurred_at DATETIME NOT NULL, 
	cost FLOAT NOT NULL, 
	event_metadata JSON NOT NULL, 
	received_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(media_buy_id) REFERENCES media_buys (media_buy_id), 
	FOREIGN KEY(package_id) REFERENCES packages (package_id), 
	FOREIGN KEY(principal_id) REFERENCES principals (principal_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	UNIQUE (tenant_id, kind, event_id)
);
CREATE INDEX ix_tracking_events_media_buy_id ON tracking_events (media_buy_id);
CREATE TABLE chat_conversations (
	id INTEGER NOT NULL, 
	conversation_id VARCHAR(64) NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	principal_id VARCHAR(64) NOT NULL, 
	title VARCHAR(200) NOT NULL, 
	model VARCHAR(64) NOT NULL, 
	message_count INTEGER NOT NULL, 
	input_tokens INTEGER NOT NULL, 
	output_tokens INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(principal_id) REFERENCES principals (principal_id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	UNIQUE (tenant_id, principal_id, conversation_id)
);
CREATE INDEX ix_chat_conversations_owner_updated ON chat_conversations (tenant_id, principal_id, updated_at);
CREATE TABLE chat_messages (
	id INTEGER NOT NULL, 
	conversation_pk INTEGER NOT NULL, 
	seq INTEGER NOT NULL, 
	role VARCHAR(20) NOT NULL, 
	content JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(conversation_pk) REFERENCES chat_conversations (id), 
	UNIQUE (conversation_pk, seq)
);
CREATE TABLE admin_api_keys (
	key_id VARCHAR(40) NOT NULL, 
	key_hash VARCHAR(64) NOT NULL, 
	key_hint VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	rotated_at DATETIME, 
	PRIMARY KEY (key_id)
);
CREATE TABLE inventory_items (
	id INTEGER NOT NULL, 
	tenant_id VARCHAR(64) NOT NULL, 
	item_id VARCHAR(200) NOT NULL, 
	name VARCHAR(300) NOT NULL, 
	kind VARCHAR(40) NOT NULL, 
	parent_id VARCHAR(200), 
	synced_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id), 
	UNIQUE (tenant_id, item_id)
);
CREATE INDEX ix_inventory_items_tenant_id ON inventory_items (tenant_id);
INSERT INTO alembic_version (version_num) VALUES ('0003_tenant_admin');
INSERT INTO alembic_version (version_num) VALUES ('0004_chat');
INSERT INTO alembic_version (version_num) VALUES ('0007_delivery');
INSERT INTO alembic_version (version_num) VALUES ('0010_sandbox');
INSERT INTO alembic_version (version_num) VALUES ('0013_signal_version');
INSERT INTO alembic_version (version_num) VALUES ('0039_optimization_goals');
