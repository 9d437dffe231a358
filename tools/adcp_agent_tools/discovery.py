"""Discovery tools: what this publisher sells and how to talk to it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from pydantic import Field

from adcp_agent import __version__
from adcp_agent.errors import AdcpError
from adcp_agent.services import (
    accounts,
    optimization_goals,
    postal_areas,
    sandbox,
    sandbox_arms,
    tenants,
    test_controller,
)
from adcp_agent.services import catalog as catalogs
from adcp_agent.services.conversions import ACTION_SOURCES
from adcp_agent.services.format_search import FormatQuery
from adcp_agent.services.identity import Caller
from adcp_agent.state import AppState
from adcp_agent_tools import audiences as audience_tools
from adcp_agent_tools import wire
from adcp_agent_tools.caller import current_caller
from adcp_agent_tools.params import (
    SUPPORTED_FILTERS,
    AccountRef,
    BrandRef,
    FormatRef,
    Metro,
    Pagination,
    ProductFilters,
    check_names,
    dump,
)
from adcp_agent_tools.results import (
    adcp_errors_as_results,
    fingerprint,
    not_applied,
    ok,
    paginate,
    projected,
)
from adcp_agent_tools.test_controller import forced_result

# AdCP 3.1 media-buy features, as this agent supports them (declared in
# get_adcp_capabilities; get_products' required_features filters on them).
MEDIA_BUY_FEATURES = {
    "inline_creative_management": False,  # creatives come through sync_creatives
    "property_list_filtering": False,
    "catalog_management": False,
    "committed_metrics_supported": False,
}
# AdCP 3.1 get_products' ``fields`` values
PRODUCT_FIELDS = tuple(
    "product_id name description publisher_properties channels video_placement_types "
    "audio_distribution_types sponsored_placement_types social_placement_surfaces "
    "format_ids format_options placements delivery_type exclusivity pricing_options "
    "forecast outcome_measurement delivery_measurement reporting_capabilities "
    "creative_policy catalog_types metric_optimization conversion_tracking "
    "data_provider_signals included_signals signal_targeting_allowed "
    "signal_targeting_options signal_targeting_rules max_optimization_goals catalog_match "
    "collections collection_targeting_allowed installments brief_relevance expires_at "
    "product_card product_card_detailed enforced_policies trusted_match".split()
)
READ_ONLY = {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False}

# Specialisms are claimed only when every tool they exercise is served here, so
# conformance tooling never tests something we do not do.
# log_event attributes last-click, by the click id of a tracked click (services.conversions).
CONVERSION_TRACKING = {
    "multi_source_event_dedup": False,
    "per_creative_attribution": False,
    "supported_action_sources": list(ACTION_SOURCES),
    "attribution_windows": [{"post_click": [{"interval": 28, "unit": "days"}]}],
}
SPECIALISM_TOOLS = {
    "sales-guaranteed": {
        "get_products",
        "create_media_buy",
        "update_media_buy",
        "get_media_buys",
        "get_media_buy_delivery",
        "sync_creatives",
    },
    "sales-non-guaranteed": {
        "get_products",
        "create_media_buy",
        "update_media_buy",
        "get_media_buys",
        "get_media_buy_delivery",
        "sync_creatives",
    },
    "signal-owned": {"get_signals", "activate_signal"},
}
PROTOCOL_TOOLS = {"media_buy": {"get_products"}, "signals": {"get_signals"}}


def register(mcp: FastMCP, state: AppState) -> None:
    @mcp.tool(name="get_adcp_capabilities", annotations=READ_ONLY, output_schema=None)
    @adcp_errors_as_results
    async def get_adcp_capabilities(
        protocols: Annotated[
            list[str] | None, Field(description="Only describe these protocols.")
        ] = None,
    ) -> ToolResult:
        """Describe this sales agent: AdCP versions, protocols and specialisms it supports,
        the publisher's portfolio (domains, channels, countries), pricing models and
        targeting. Call it first; everything it claims is served. Example: {}."""
        caller = current_caller()
        tools = {t.name for t in await mcp.list_tools(run_middleware=False)}
        supported = [p for p, need in PROTOCOL_TOOLS.items() if need <= tools]
        if protocols:
            supported = [p for p in supported if p in protocols]
        specialisms = [s for s, need in SPECIALISM_TOOLS.items() if need <= tools]
        products = await catalogs.search_products(state.db, caller, catalogs.ProductQuery())
        properties = await catalogs.list_properties(state.db, caller)
        channels = sorted({c for r in products for c in r.product.channels})
        countries = sorted({c for r in products for c in r.product.countries})
        models = sorted(
            {o.get("pricing_model", "cpm") for r in products for o in r.product.pricing_options}
        )
        domains = sorted({p.publisher_domain for p in properties})
        tenant = await tenants.callers_tenant(state.db, caller)
        optimised = sorted(
            {m for r in products for m in optimization_goals.supported_metrics(r.product)}
            if state.adapters.choose(tenant, sandbox=False) == optimization_goals.SIMULATED
            else ()
        )
        payload: dict[str, Any] = {
            "adcp": {
                "major_versions": [3],
                "supported_versions": ["3.1"],
                "build_version": "3.1.15",
                "idempotency": {"supported": True, "replay_ttl_seconds": 86_400},
            },
            "supported_protocols": supported,
            "specialisms": specialisms,
        }
        if {"list_accounts", "sync_accounts"} <= tools:
            payload["account"] = {
                "supported_billing": ["operator", "agent", "advertiser"],
                "required_for_products": False,
                "sandbox": True,
            }
        if "media_buy" in supported:
            payload["media_buy"] = {
                "supported_pricing_models": models or ["cpm"],
                "buying_modes": ["brief", "wholesale"],
                "supports_proposals": False,
                # Accounts with a governance agent (sync_governance) buy only with its
                # check_governance verdict (services.governance).
                "governance_aware": "sync_governance" in tools,
                "features": MEDIA_BUY_FEATURES,
                "reporting_delivery_methods": ["webhook"],  # reporting_webhook per buy
                **(
                    {"conversion_tracking": CONVERSION_TRACKING}
                    if {"sync_event_sources", "log_event"} <= tools
                    else {}
                ),
                # What targeting_overlay honours (services.targeting): every geo level
                # a product may allow, metros as Nielsen DMAs (the codes the adapters
                # map), postal areas in the systems checked here; no languages,
                # keywords or proximity.
                "execution": {
                    "targeting": {
                        "geo_countries": True,
                        "geo_regions": True,
                        "geo_metros": {"nielsen_dma": True},
                        "geo_postal_areas": postal_areas.capabilities(),
                        "language": False,
                    }
                },
                # Metric goals the products optimise toward (services.optimization_goals).
                **({"supported_optimization_metrics": optimised} if optimised else {}),
                # CRM audiences matched against the publisher's users (sync_audiences).
                **(
                    {"audience_targeting": audience_tools.capabilities(tenant.features)}
                    if "sync_audiences" in tools
                    else {}
                ),
                # Offline creatives show in get_media_buys' health (buy_health).
                "propagation_surfaces": ["snapshot"],
                "portfolio": {
                    "publisher_domains": domains,
                    "primary_channels": channels,
                    "primary_countries": countries,
                    "description": f"{caller.tenant_name}: {len(products)} products across "
                    f"{', '.join(channels)} (adcp-agent {__version__}).",
                },
            }
        if sandbox.is_sandbox_caller(caller):  # it alone sees the controller
            payload["compliance_testing"] = {"scenarios": list(test_controller.SCENARIOS)}
        if "signals" in supported:
            payload["signals"] = {
                "data_provider_domains": domains[:1],
                "discovery_modes": ["brief", "wholesale"],
            }
        return ok(payload)

    @mcp.tool(name="get_products", annotations=READ_ONLY, output_schema=None)
    @adcp_errors_as_results
    async def get_products(
        brief: Annotated[
            str | None,
            Field(description="Natural-language campaign brief: audience, channels, goals."),
        ] = None,
        buying_mode: Annotated[
            Literal["brief", "wholesale", "refine"] | None,
            Field(
                description="'brief' (curated for the brief) or 'wholesale' (everything "
                "matching the filters, no brief). Defaults to 'brief' when a brief is given."
            ),
        ] = None,
        filters: Annotated[ProductFilters | None, Field(description="Hard filters.")] = None,
        brand: BrandRef | None = None,
        account: AccountRef | None = None,
        preferred_delivery_types: list[Literal["guaranteed", "non_guaranteed"]] | None = None,
        category: Annotated[
            str | None, Field(description="Seed-003 alias: a channel or keyword to filter on.")
        ] = None,
        pagination: Pagination | None = None,
        property_list: dict[str, Any] | None = None,
        required_policies: list[str] | None = None,
        catalog: dict[str, Any] | None = None,
        fields: Annotated[
            list[str] | None,
            Field(
                min_length=1,
                description="Only these product fields (product_id and name always), "
                "e.g. ['pricing_options'] for a light comparison.",
            ),
        ] = None,
    ) -> ToolResult:
        """Find advertising products for a campaign. Give a natural-language `brief`
        (e.g. "video ads for sports fans in the US, $50k, March") and/or `filters`
        (delivery_type, channels, countries, format_ids, budget_range, start_date/end_date,
        is_fixed_price, pricing_currencies). Products come ranked by relevance to the
        brief, each with `brief_relevance` explaining the match, its formats and pricing
        options (pricing_option_id is what create_media_buy needs)."""
        caller = current_caller()
        await resolve_account(state, caller, account)
        mode = buying_mode or ("brief" if brief else "wholesale")
        if mode == "wholesale" and brief:
            raise AdcpError(
                "INVALID_REQUEST",
                "A wholesale request must not carry a brief.",
                field="brief",
                suggestion="Drop the brief or use buying_mode 'brief'.",
            )
        if mode == "brief" and not (brief and brief.strip()) and not category:
            raise AdcpError(
                "INVALID_REQUEST",
                "buying_mode 'brief' needs a non-empty brief.",
                field="brief",
                suggestion="Send a brief, or use buying_mode 'wholesale' with filters.",
            )
        if mode == "refine":
            raise AdcpError(
                "UNSUPPORTED_FEATURE",
                "Refinement of earlier results is not offered; send a new brief instead.",
                field="buying_mode",
            )
        check_names(fields or [], PRODUCT_FIELDS, "fields")
        f = filters or ProductFilters()
        warnings = [
            AdcpError(
                "UNSUPPORTED_FEATURE",
                f"Filter '{name}' is not supported by this publisher and was not applied.",
                field=f"filters.{name}",
            ).to_adcp()
            for name in sorted(f.model_extra or {})
            if name not in SUPPORTED_FILTERS and name != "ext"
        ] + not_applied(
            [
                ("property_list", property_list),
                ("required_policies", required_policies),
                ("catalog", catalog),
            ]
            + [
                (f"filters.metros[{i}]", m)
                for i, m in enumerate(f.metros or [])
                if m.system == "custom"  # names no country this agent knows
            ]
        )
        budget = None
        if f.budget_range is not None:
            budget = f.budget_range.max if f.budget_range.max is not None else f.budget_range.min
        channels = list(f.channels or [])
        text = brief or ""
        if category:
            text = f"{text} {category}".strip()
        delivery = f.delivery_type
        if delivery is None and preferred_delivery_types and len(preferred_delivery_types) == 1:
            delivery = preferred_delivery_types[0]
        query = catalogs.ProductQuery(
            brief=text or None,
            delivery_type=delivery,
            channels=channels,
            format_ids=[ref.id for ref in f.format_ids or []],
            format_kinds=list(f.format_types or []),
            countries=list(f.countries or []),
            budget=budget,
            start_date=f.start_date,
            end_date=f.end_date,
            is_fixed_price=f.is_fixed_price,
            currencies=list(f.pricing_currencies or []),
            regions=[*(f.regions or []), *_metro_regions(f.metros or [])],
            geo_levels=[g.level for g in f.required_geo_targeting or []],
            exclusivity=f.exclusivity,
        )
        if f.start_date and f.end_date and f.end_date < f.start_date:
            raise AdcpError(
                "VALIDATION_ERROR", "end_date is before start_date.", field="filters.end_date"
            )
        forced = await sandbox_arms.take(state, caller, "get_products", dump(account))
        if forced is not None:  # a sandbox's force_get_products_arm
            return forced_result(forced)
        required = f.required_features or {}
        lacking = sorted(k for k, v in required.items() if v and not MEDIA_BUY_FEATURES.get(k))
        ranked = (
            []  # products of a seller without a required feature: none
            if lacking
            else await catalogs.search_products(state.db, caller, query, now=state.clock.now())
        )
        page, page_info = paginate(
            ranked,
            dump(pagination),
            fingerprint("get_products", caller.tenant_id, caller.principal_id, query),
        )
        properties = {p.property_id: p for p in await catalogs.list_properties(state.db, caller)}
        url = state.agent_url
        # Goals are declared where the publisher's ad server pursues them.
        ad_server = state.adapters.choose(
            await tenants.callers_tenant(state.db, caller), sandbox=False
        )
        payload: dict[str, Any] = {
            "message": _products_message(len(ranked), brief, lacking),
            "cache_scope": "account" if caller.authenticated else "public",
            "products": projected(
                [
                    wire.product(
                        r.product,
                        agent_url=url,
                        properties=properties,
                        brief_relevance=r.relevance if mode == "brief" else None,
                        ad_server=ad_server,
                    )
                    for r in page
                ],
                fields,
                ("product_id", "name"),
            ),
            "pagination": page_info,
        }
        if warnings:
            payload["errors"] = warnings
        return ok(payload)

    @mcp.tool(name="list_creative_formats", annotations=READ_ONLY, output_schema=None)
    @adcp_errors_as_results
    async def list_creative_formats(
        format_ids: list[FormatRef] | None = None,
        asset_types: Annotated[
            list[str] | None, Field(description="Only formats using these asset types.")
        ] = None,
        name_search: Annotated[
            str | None, Field(max_length=200, description="A part of the name, any case.")
        ] = None,
        min_width: Annotated[int | None, Field(ge=0)] = None,
        max_width: Annotated[int | None, Field(ge=0)] = None,
        min_height: Annotated[int | None, Field(ge=0)] = None,
        max_height: Annotated[int | None, Field(ge=0)] = None,
        is_responsive: bool | None = None,
        type: Annotated[  # noqa: A002 - AdCP's name for it
            Literal["display", "video", "audio", "dooh"] | None,
            Field(description="Only formats of this type."),
        ] = None,
        pagination: Pagination | None = None,
        publisher_domain: str | None = None,
        property_id: str | None = None,
        wcag_level: str | None = None,
        disclosure_positions: list[str] | None = None,
        disclosure_persistence: list[str] | None = None,
        output_format_ids: list[FormatRef] | None = None,
        input_format_ids: list[FormatRef] | None = None,
    ) -> ToolResult:
        """List the creative formats this publisher accepts (display sizes, video and
        audio specs) with their asset requirements. Format ids are {agent_url, id}
        objects; use them in creatives and product filters. Filter by ids, type, asset
        types, name_search, min/max width and height (formats with fixed dimensions;
        audio has none) and is_responsive (none of these formats are)."""
        caller = current_caller()
        unapplied = {
            "publisher_domain": publisher_domain,
            "property_id": property_id,
            "wcag_level": wcag_level,
            "disclosure_positions": disclosure_positions,
            "disclosure_persistence": disclosure_persistence,
            "output_format_ids": output_format_ids,
            "input_format_ids": input_format_ids,
        }
        query = FormatQuery(
            format_ids=[ref.id for ref in format_ids or []],
            name_search=name_search,
            min_width=min_width,
            max_width=max_width,
            min_height=min_height,
            max_height=max_height,
            is_responsive=is_responsive,
            type=type,
        )
        formats = [f for f in await catalogs.list_formats(state.db, caller) if query.matches(f)]
        url = state.agent_url
        rendered = [wire.creative_format(f, agent_url=url) for f in formats]
        if asset_types:
            rendered = [
                r for r in rendered if {a["asset_type"] for a in r["assets"]} & set(asset_types)
            ]
        page, page_info = paginate(
            rendered,
            dump(pagination),
            fingerprint("formats", caller.tenant_id, repr(query), sorted(asset_types or [])),
        )
        payload: dict[str, Any] = {"source": "publisher", "formats": page, "pagination": page_info}
        ignored = not_applied(unapplied.items())
        if ignored:
            payload["errors"] = ignored
        return ok(payload)

    @mcp.tool(name="list_authorized_properties", annotations=READ_ONLY, output_schema=None)
    @adcp_errors_as_results
    async def list_authorized_properties() -> ToolResult:
        """List the publisher properties (sites, apps, CTV channels, audio streams,
        podcasts) this agent is authorized to sell, with their identifiers."""
        caller = current_caller()
        properties = await catalogs.list_properties(state.db, caller)
        return ok(
            {
                "publisher_domains": sorted({p.publisher_domain for p in properties}),
                "properties": [wire.authorized_property(p) for p in properties],
            }
        )


async def resolve_account(state: AppState, caller: Caller, account: AccountRef | None) -> None:
    """Validate an optional `account` on a read: it must exist, be the caller's and be
    usable — the same errors a buying call would give."""
    if account is None:
        return
    if not caller.authenticated:
        raise AdcpError(
            "AUTH_REQUIRED",
            "An account can only be named by an authenticated buyer.",
            field="account",
        )
    await accounts.resolve(state.db, caller, dump(account))


# The country of each metro system's areas (a NUTS 2 code begins with its country's).
_METRO_COUNTRY = {"nielsen_dma": "US", "uk_itl1": "GB", "uk_itl2": "GB"}


def _metro_regions(metros: list[Metro]) -> list[str]:
    """Metros as the regions of their countries, for the coverage filter: a product
    serving the country covers its metros (this publisher sells no metro-bound
    inventory). A custom system names no country: it is reported as not applied."""
    out = []
    for m in metros:
        if m.system == "eurostat_nuts2":
            country = {"EL": "GR", "UK": "GB"}.get(m.code[:2].upper(), m.code[:2].upper())
        else:
            country = _METRO_COUNTRY.get(m.system)
        if country:
            out.append(f"{country}-{m.code.upper()}")
    return out


def _products_message(count: int, brief: str | None, lacking: list[str]) -> str:
    if lacking:
        return f"This publisher does not offer {', '.join(sorted(lacking))}: no products."
    if count == 0:
        return "No products match; loosen the filters or broaden the brief."
    noun = "product" if count == 1 else "products"
    return f"Found {count} {noun}" + (" ranked by relevance to the brief." if brief else ".")
