"""The demo publisher: Riverside Media, a mid-size group with news and sports sites, a
news app, a CTV channel, a streaming radio network and a podcast network."""

from __future__ import annotations

from typing import Any

DOMAINS = ["riversidemedia.example", "riverside-sports.example"]

FORMATS: list[dict[str, Any]] = [
    {"format_id": f"display_{w}x{h}", "name": f"{label} {w}x{h}", "kind": "display",
     "width": w, "height": h, "mime_types": ["image/png", "image/jpeg", "image/gif", "text/html"],
     "max_file_kb": 150, "description": f"Standard IAB {label.lower()} ({w}x{h})."}
    for label, w, h in [
        ("Medium rectangle", 300, 250), ("Leaderboard", 728, 90), ("Mobile banner", 320, 50),
        ("Half page", 300, 600), ("Billboard", 970, 250), ("Mobile interstitial", 320, 480),
    ]
] + [
    {"format_id": "video_1920x1080", "name": "HD video 16:9 (15s/30s)", "kind": "video",
     "width": 1920, "height": 1080, "durations_s": [15, 30], "mime_types": ["video/mp4"],
     "max_file_kb": 200_000, "description": "Full HD in-stream video for CTV and pre-roll."},
    {"format_id": "video_1280x720", "name": "HD video 720p (6s/15s/30s)", "kind": "video",
     "width": 1280, "height": 720, "durations_s": [6, 15, 30], "mime_types": ["video/mp4"],
     "max_file_kb": 100_000, "description": "720p in-stream video for web and app players."},
    {"format_id": "audio_30s", "name": "Audio spot (15s/30s)", "kind": "audio",
     "durations_s": [15, 30], "mime_types": ["audio/mpeg", "audio/aac"], "max_file_kb": 5_000,
     "description": "Pre-produced audio spot for streaming radio."},
    {"format_id": "audio_host_read_60s", "name": "Podcast host-read (60s)", "kind": "audio",
     "durations_s": [60], "mime_types": ["audio/mpeg"], "max_file_kb": 10_000,
     "description": "Host-read mid-roll from a supplied script or recording."},
]

PROPERTIES: list[dict[str, Any]] = [
    {"property_id": "riverside_news_web", "property_type": "website", "name": "Riverside News",
     "publisher_domain": "riversidemedia.example", "tags": ["news", "premium"],
     "identifiers": [{"type": "domain", "value": "riversidemedia.example"}]},
    {"property_id": "riverside_sports_web", "property_type": "website",
     "name": "Riverside Sports", "publisher_domain": "riverside-sports.example",
     "tags": ["sports", "premium"],
     "identifiers": [{"type": "domain", "value": "riverside-sports.example"}]},
    {"property_id": "riverside_news_app", "property_type": "mobile_app",
     "name": "Riverside News app", "publisher_domain": "riversidemedia.example",
     "tags": ["news", "mobile"],
     "identifiers": [{"type": "ios_bundle", "value": "com.riversidemedia.news"},
                     {"type": "android_package", "value": "com.riversidemedia.news"}]},
    {"property_id": "riverside_tv", "property_type": "ctv_app", "name": "Riverside TV",
     "publisher_domain": "riversidemedia.example", "tags": ["ctv", "sports", "entertainment"],
     "identifiers": [{"type": "roku_store_id", "value": "711842"},
                     {"type": "fire_tv_asin", "value": "B0RIVERTV1"}]},
    {"property_id": "riverside_radio", "property_type": "streaming_audio",
     "name": "Riverside Radio Network", "publisher_domain": "riversidemedia.example",
     "tags": ["audio", "music", "talk"],
     "identifiers": [{"type": "domain", "value": "radio.riversidemedia.example"}]},
    {"property_id": "riverside_podcasts", "property_type": "podcast",
     "name": "Riverside Podcasts", "publisher_domain": "riversidemedia.example",
     "tags": ["audio", "podcast", "business", "sports"],
     "identifiers": [{"type": "rss_url",
                     "value": "https://podcasts.riversidemedia.example/feed.xml"}]},
]


def _fixed(pid: str, price: float, min_spend: float) -> dict[str, Any]:
    return {"pricing_option_id": pid, "pricing_model": "cpm", "currency": "USD",
            "fixed_price": price, "min_spend": min_spend}


def _auction(pid: str, floor: float, min_spend: float) -> dict[str, Any]:
    return {"pricing_option_id": pid, "pricing_model": "cpm", "currency": "USD",
            "floor_price": floor, "min_spend": min_spend}


_STD_TARGETING = ["geo_country", "geo_region", "geo_metro", "device_type", "signals"]

PRODUCTS: list[dict[str, Any]] = [
    {"product_id": "ctv_sports_premium", "name": "Connected TV - Sports Premium",
     "description": "Guaranteed 15s and 30s spots in live and on-demand sports on Riverside TV: "
                    "NFL pre-game, college basketball and local sports shows, 100% viewable, "
                    "non-skippable, household-level reach on the big screen.",
     "keywords": ["sports", "football", "basketball", "live", "premium", "big screen", "reach"],
     "channels": ["ctv"], "delivery_type": "guaranteed", "format_ids": ["video_1920x1080"],
     "property_ids": ["riverside_tv"], "countries": ["US"],
     "pricing_options": [_fixed("ctv_sports_cpm", 42.0, 10_000)],
     "targeting": _STD_TARGETING + ["daypart"],
     "inventory": {"daily_impressions": 180_000, "fill_rate": 0.9, "min_lead_days": 2,
                   "ctr": 0.0, "completion_rate": 0.96, "viewability": 1.0}},
    {"product_id": "ctv_entertainment_ron", "name": "Connected TV - Entertainment Run of Network",
     "description": "Biddable CTV video across Riverside TV's movies, drama and lifestyle "
                    "programming. Non-guaranteed, auction priced with a floor.",
     "keywords": ["entertainment", "movies", "drama", "lifestyle", "streaming", "auction"],
     "channels": ["ctv"], "delivery_type": "non_guaranteed",
     "format_ids": ["video_1920x1080", "video_1280x720"], "property_ids": ["riverside_tv"],
     "countries": ["US", "CA"], "pricing_options": [_auction("ctv_ron_auction", 18.0, 2_500)],
     "targeting": _STD_TARGETING,
     "inventory": {"daily_impressions": 650_000, "fill_rate": 0.75, "completion_rate": 0.93,
                   "viewability": 1.0}},
    {"product_id": "olv_news_preroll", "name": "Online Video - News Pre-roll",
     "description": "Guaranteed pre-roll before Riverside News video clips on web and app: "
                    "breaking news, politics, business and weather.",
     "keywords": ["news", "politics", "business", "weather", "preroll", "brand safe"],
     "channels": ["olv"], "delivery_type": "guaranteed",
     "format_ids": ["video_1280x720", "video_1920x1080"],
     "property_ids": ["riverside_news_web", "riverside_news_app"], "countries": ["US"],
     "pricing_options": [_fixed("olv_news_cpm", 24.0, 5_000)], "targeting": _STD_TARGETING,
     "inventory": {"daily_impressions": 420_000, "fill_rate": 0.85, "min_lead_days": 1,
                   "ctr": 0.004, "completion_rate": 0.78, "viewability": 0.82}},
    {"product_id": "display_homepage_takeover", "name": "Display - News Homepage Takeover",
     "description": "Own the Riverside News homepage for a day: billboard plus half-page "
                    "companion, 100% share of voice. Ideal for launches and awareness.",
     "keywords": ["news", "homepage", "takeover", "roadblock", "launch", "awareness", "premium"],
     "channels": ["display"], "delivery_type": "guaranteed",
     "format_ids": ["display_970x250", "display_300x600"],
     "property_ids": ["riverside_news_web"], "countries": ["US"],
     "pricing_options": [_fixed("takeover_cpm", 30.0, 15_000)], "targeting": ["geo_country"],
     "inventory": {"daily_impressions": 300_000, "fill_rate": 1.0, "min_lead_days": 3,
                   "ctr": 0.006, "viewability": 0.88}},
    {"product_id": "display_run_of_site", "name": "Display - Run of Site",
     "description": "Biddable standard banners across all Riverside websites and the news "
                    "app. Scalable, efficient reach for performance and retargeting.",
     "keywords": ["banner", "run of site", "performance", "efficient", "scale", "auction"],
     "channels": ["display"], "delivery_type": "non_guaranteed",
     "format_ids": ["display_300x250", "display_728x90", "display_320x50"],
     "property_ids": ["riverside_news_web", "riverside_sports_web", "riverside_news_app"],
     "countries": ["US", "CA", "GB"], "pricing_options": [_auction("ros_auction", 3.5, 500)],
     "targeting": _STD_TARGETING,
     "inventory": {"daily_impressions": 2_400_000, "fill_rate": 0.7, "ctr": 0.0012,
                   "viewability": 0.64}},
    {"product_id": "display_sports_section", "name": "Display - Sports Section",
     "description": "Biddable banners on Riverside Sports scores, team pages and live blogs: "
                    "a passionate sports fan audience on desktop and mobile web.",
     "keywords": ["sports", "fans", "scores", "football", "basketball", "auction"],
     "channels": ["display"], "delivery_type": "non_guaranteed",
     "format_ids": ["display_300x250", "display_728x90", "display_300x600"],
     "property_ids": ["riverside_sports_web"], "countries": ["US"],
     "pricing_options": [_auction("sports_display_auction", 6.0, 1_000)],
     "targeting": _STD_TARGETING,
     "inventory": {"daily_impressions": 900_000, "fill_rate": 0.8, "ctr": 0.0018,
                   "viewability": 0.7}},
    {"product_id": "mobile_app_interstitial", "name": "Mobile App - Interstitial",
     "description": "Full-screen interstitials between articles in the Riverside News app on "
                    "iOS and Android. High attention mobile placement.",
     "keywords": ["mobile", "app", "interstitial", "full screen", "attention", "news"],
     "channels": ["display"], "delivery_type": "non_guaranteed",
     "format_ids": ["display_320x480"], "property_ids": ["riverside_news_app"],
     "countries": ["US"], "pricing_options": [_auction("interstitial_auction", 8.0, 1_000)],
     "targeting": _STD_TARGETING + ["os"],
     "inventory": {"daily_impressions": 350_000, "fill_rate": 0.65, "ctr": 0.009,
                   "viewability": 0.95}},
    {"product_id": "audio_streaming_radio", "name": "Audio - Streaming Radio Spots",
     "description": "Guaranteed 15s and 30s audio spots on the Riverside Radio Network's "
                    "music and talk stations, heard during commutes and at work.",
     "keywords": ["audio", "radio", "music", "talk", "commute", "streaming"],
     "channels": ["streaming_audio"], "delivery_type": "guaranteed", "format_ids": ["audio_30s"],
     "property_ids": ["riverside_radio"], "countries": ["US"],
     "pricing_options": [_fixed("radio_cpm", 14.0, 3_000)],
     "targeting": _STD_TARGETING + ["daypart"],
     "inventory": {"daily_impressions": 500_000, "fill_rate": 0.8, "min_lead_days": 2,
                   "completion_rate": 0.92}},
    {"product_id": "audio_programmatic", "name": "Audio - Programmatic Run of Network",
     "description": "Biddable audio across all Riverside Radio streams and podcast "
                    "back-catalogue; efficient frequency for audio-first brands.",
     "keywords": ["audio", "radio", "podcast", "efficient", "frequency", "auction"],
     "channels": ["streaming_audio", "podcast"], "delivery_type": "non_guaranteed",
     "format_ids": ["audio_30s"], "property_ids": ["riverside_radio", "riverside_podcasts"],
     "countries": ["US", "CA"], "pricing_options": [_auction("audio_auction", 6.0, 500)],
     "targeting": _STD_TARGETING,
     "inventory": {"daily_impressions": 1_100_000, "fill_rate": 0.6, "completion_rate": 0.9}},
    {"product_id": "podcast_host_read", "name": "Podcast - Host-Read Sponsorship",
     "description": "Host-read 60s mid-rolls on Riverside's business and sports podcasts. "
                    "Trusted voices, strong recall; sold as a guaranteed sponsorship.",
     "keywords": ["podcast", "host read", "sponsorship", "business", "sports", "finance"],
     "channels": ["podcast"], "delivery_type": "guaranteed",
     "format_ids": ["audio_host_read_60s"], "property_ids": ["riverside_podcasts"],
     "countries": ["US"], "pricing_options": [_fixed("host_read_cpm", 25.0, 5_000)],
     "targeting": ["geo_country"],
     "inventory": {"daily_impressions": 60_000, "fill_rate": 1.0, "min_lead_days": 7,
                   "completion_rate": 0.88}},
    {"product_id": "ctv_private_upfront", "name": "Connected TV - Upfront Private Deal",
     "description": "Private upfront package of prime-time CTV sports and entertainment for "
                    "known advertisers only; not shown to anonymous browsers.",
     "keywords": ["ctv", "upfront", "prime time", "private", "sports", "entertainment"],
     "channels": ["ctv"], "delivery_type": "guaranteed", "format_ids": ["video_1920x1080"],
     "property_ids": ["riverside_tv"], "countries": ["US"], "is_public": False,
     "pricing_options": [_fixed("upfront_cpm", 36.0, 50_000)], "targeting": _STD_TARGETING,
     "inventory": {"daily_impressions": 120_000, "fill_rate": 1.0, "min_lead_days": 5,
                   "completion_rate": 0.97, "viewability": 1.0}},
]

SIGNALS: list[dict[str, Any]] = [
    {"signal_id": "sports_enthusiasts", "name": "Sports Enthusiasts", "signal_type": "audience",
     "description": "Readers and viewers who consumed sports content 4+ times in 30 days.",
     "keywords": ["sports", "fans", "football", "basketball"], "reach": 2_500_000,
     "coverage_percentage": 22.0, "cpm": 2.5, "data_provider": "Riverside Media first-party"},
    {"signal_id": "auto_intenders", "name": "Auto Intenders", "signal_type": "audience",
     "description": "Users researching new vehicles: reviews, comparisons, dealer locators.",
     "keywords": ["auto", "car", "vehicle", "automotive", "intender"], "reach": 640_000,
     "coverage_percentage": 6.0, "cpm": 3.0, "data_provider": "Riverside Media first-party"},
    {"signal_id": "business_decision_makers", "name": "Business Decision Makers",
     "signal_type": "audience",
     "description": "Frequent readers of business, markets and finance coverage on weekdays.",
     "keywords": ["business", "finance", "b2b", "executive", "markets"], "reach": 410_000,
     "coverage_percentage": 4.0, "cpm": 4.0, "data_provider": "Riverside Media first-party"},
    {"signal_id": "new_parents", "name": "New Parents", "signal_type": "audience",
     "description": "Readers of parenting, baby and family content in the last 60 days.",
     "keywords": ["parents", "family", "baby", "kids"], "reach": 380_000,
     "coverage_percentage": 3.5, "cpm": 2.75, "data_provider": "Riverside Media first-party"},
    {"signal_id": "food_lovers", "name": "Food & Recipe Lovers", "signal_type": "audience",
     "description": "Users who read recipes and restaurant reviews weekly.",
     "keywords": ["food", "recipe", "cooking", "restaurant"], "reach": 720_000,
     "coverage_percentage": 7.0, "cpm": 2.0, "data_provider": "Riverside Media first-party"},
    {"signal_id": "ctx_live_sports", "name": "Live Sports Moments", "signal_type": "contextual",
     "description": "Pages and streams covering a live game in progress.",
     "keywords": ["sports", "live", "game", "contextual"], "reach": 1_200_000,
     "coverage_percentage": 11.0, "cpm": 1.5, "data_provider": "Riverside Media contextual"},
    {"signal_id": "ctx_breaking_news", "name": "Breaking News (brand-safe)",
     "signal_type": "contextual",
     "description": "Breaking news pages classified brand-safe (no tragedy or conflict).",
     "keywords": ["news", "breaking", "brand safe", "contextual"], "reach": 1_900_000,
     "coverage_percentage": 18.0, "cpm": 1.0, "data_provider": "Riverside Media contextual"},
    {"signal_id": "ctx_personal_finance", "name": "Personal Finance Content",
     "signal_type": "contextual",
     "description": "Articles and podcasts about saving, investing, mortgages and taxes.",
     "keywords": ["finance", "investing", "money", "mortgage", "contextual"], "reach": 560_000,
     "coverage_percentage": 5.0, "cpm": 1.25, "data_provider": "Riverside Media contextual"},
    {"signal_id": "geo_top25_metros", "name": "Top 25 US Metros", "signal_type": "geo",
     "description": "Users located in the 25 largest US metropolitan areas.",
     "keywords": ["geo", "metro", "urban", "city"], "reach": 5_400_000,
     "coverage_percentage": 48.0, "cpm": 0.5, "data_provider": "Riverside Media first-party"},
]
