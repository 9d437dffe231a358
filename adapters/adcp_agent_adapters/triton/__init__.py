"""Triton Digital audio adapter (entry point ``triton_digital``).

Triton's booking API is not publicly documented, so this adapter speaks an ASSUMED REST
contract, written down here and in the README. Base URL, auth header and every path are
``adapter_config`` settings (``TritonConfig``), so a publisher with real API access adapts
it by configuration. Field names below are the assumption to check first.

Transport: JSON request and response bodies; ids are strings; times are ISO 8601 UTC
(``2031-03-01T00:00:00Z``). Auth: ``<auth_header>: <auth_scheme> <key>`` (default
``Authorization: Bearer <key>``). Errors: 4xx/5xx with ``{"error"|"message": "..."}``;
429 may carry ``Retry-After``.

====================  ======  ==================================================================
config ``paths.*``    method  request → response
====================  ======  ==================================================================
stations              GET     → ``{"stations": [{"id", "name"}]}`` (or a bare array / ``items``)
health                GET     any 2xx means healthy (default: the stations list)
campaigns             POST    ``{name, external_id, advertiser: {id?, name}, start, end,
                              budget: {amount, currency}, po_number, status: "draft"}`` → ``{id}``
campaigns             GET     ``?external_id=<media buy id>`` → ``{"campaigns": [{id,
                              external_id}]}`` (or a bare array / ``items``): the campaign a
                              booking interrupted after this POST made, to cancel it
campaign              GET     → ``{id, status, flights: [{id, status}]}``
campaign              PATCH   ``{status}``: active | approved | paused | archived | canceled
flights               POST    ``{name, external_id, guaranteed, start, end, stations: [id],
                              dayparts: [name], audio_formats: [format], goal: {type:
                              "impressions", value} | null, pricing: {model: cpm|flat_rate, rate,
                              currency}, budget: {amount, currency}, pacing, targeting:
                              {countries, countries_exclude, regions, regions_exclude,
                              metros, metros_exclude, devices, devices_exclude, platforms,
                              postal_codes, postal_codes_exclude ("US:10001"), key_values:
                              {key: [value]}}, frequency_cap}`` → ``{id}``
flight                PATCH   any of ``budget, daily_budget, goal, pricing: {rate}, end, pacing,
                              targeting, frequency_cap, dayparts``; or ``{status}``: active|paused
creatives             POST    ``{name, external_id, type: audio|companion_banner, format_id,
                              asset_url, vast, click_url, duration_s, width, height,
                              advertiser_id}`` → ``{id}``
flight_creatives      POST    ``{creative_id}`` → 2xx
forecast              POST    ``{stations, dayparts, audio_formats, start, end, targeting}`` →
                              ``{available_impressions, capacity_impressions}``
delivery              GET     ``?start=YYYY-MM-DD&end=YYYY-MM-DD`` → ``{"rows": [{flight_id,
                              date, impressions, clicks, completions, spend}]}``
====================  ======  ==================================================================

Default paths: ``/stations``, ``/campaigns``, ``/campaigns/{campaign_id}``,
``/campaigns/{campaign_id}/flights``, ``/campaigns/{campaign_id}/flights/{flight_id}``,
``/creatives``, ``/campaigns/{campaign_id}/flights/{flight_id}/creatives``, ``/forecasts``,
``/campaigns/{campaign_id}/delivery``. Products name their stations in
``implementation_config.station_ids`` (or the tenant's ``default_station_ids``), and may
add ``dayparts`` and ``audio_formats``.
"""

from adcp_agent_adapters.triton.adapter import TritonAdapter
from adcp_agent_adapters.triton.config import TritonConfig, TritonPaths

__all__ = ["TritonAdapter", "TritonConfig", "TritonPaths"]
