"""AdCP creatives as GAM Creatives, and their line item associations.

- display image (``asset_url``) -> ImageCreative; GAM stores the bytes, so the image is
  downloaded and uploaded as ``primaryImageAsset``
- display tag (``snippet``)     -> ThirdPartyCreative (SafeFrame compatible)
- video file (``asset_url``)    -> VideoRedirectCreative (GAM serves it through VAST)
- video/audio VAST URL (``snippet`` that is an http(s) URL) -> VastRedirectCreative
- audio file (``asset_url``)    -> AudioRedirectCreative
Inline VAST XML is not accepted by GAM's API; the buyer has to host it.
"""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import urlparse

from adcp_agent.adapter_protocol import CreativeSpec
from adcp_agent_adapters.gam import faults
from adcp_agent_adapters.gam.orders import named

# File extension -> GAM MimeType; URLs without a known extension are sent as MP4 / MP3.
VIDEO_MIME = {".mp4": "VIDEO_MP4", ".webm": "VIDEO_WEBM"}
AUDIO_MIME = {".mp3": "AUDIO_MP3", ".wav": "AUDIO_WAV", ".ogg": "AUDIO_OGG", ".m4a": "AUDIO_MP4"}
DEFAULT_VIDEO_SIZE = (640, 360)


def _invalid(message: str, field: str, reason: str, suggestion: str | None = None) -> Exception:
    return faults.error("VALIDATION_ERROR", message, "", reason, field=field, suggestion=suggestion)


def _extension(url: str) -> str:
    return posixpath.splitext(urlparse(url).path)[1].lower()


def file_name(url: str, fallback: str) -> str:
    name = posixpath.basename(urlparse(url).path)
    return name or fallback


def _size(spec: CreativeSpec, default: tuple[int, int] | None = None) -> dict[str, Any]:
    width, height = spec.width, spec.height
    if not (width and height):
        if default is None:
            raise _invalid(
                f"Creative '{spec.creative_id}' needs a width and height for GAM.",
                "width",
                "NO_SIZE",
            )
        width, height = default
    return {"width": width, "height": height, "isAspectRatio": False}


def _duration_ms(spec: CreativeSpec) -> int:
    if not spec.duration_s:
        raise _invalid(
            f"Creative '{spec.creative_id}' needs its duration for GAM.",
            "duration_s",
            "NO_DURATION",
        )
    return int(round(spec.duration_s * 1000))


def _click(spec: CreativeSpec) -> dict[str, Any]:
    if spec.click_url:
        return {"destinationUrl": spec.click_url, "destinationUrlType": "CLICK_TO_WEB"}
    return {"destinationUrlType": "NONE"}


def needs_download(spec: CreativeSpec) -> bool:
    return spec.kind == "display" and not spec.snippet and bool(spec.asset_url)


def creative(spec: CreativeSpec, advertiser_id: int, image: bytes | None = None) -> dict[str, Any]:
    """The GAM creative for ``spec``; ``image`` is the downloaded asset for images."""
    base = {"advertiserId": advertiser_id, "name": named(spec.name, spec.creative_id)}
    snippet = (spec.snippet or "").strip()
    if spec.kind == "display":
        if snippet:
            return {
                "xsi_type": "ThirdPartyCreative",
                **base,
                "size": _size(spec),
                "snippet": snippet,
                "isSafeFrameCompatible": True,
            }
        if image is None or not spec.asset_url:
            raise _invalid(
                f"Creative '{spec.creative_id}' has neither an image nor a tag.",
                "asset_url",
                "NO_ASSET",
            )
        return {
            "xsi_type": "ImageCreative",
            **base,
            "size": _size(spec),
            **_click(spec),
            "primaryImageAsset": {
                "assetByteArray": image,
                "fileName": file_name(spec.asset_url, f"{spec.creative_id}.img"),
            },
        }
    if snippet:
        if not snippet.startswith(("https://", "http://")):
            raise _invalid(
                "Google Ad Manager takes VAST by URL, not inline XML.",
                "snippet",
                "INLINE_VAST",
                suggestion="Host the VAST document and send its URL as the snippet.",
            )
        return {
            "xsi_type": "VastRedirectCreative",
            **base,
            "size": _size(spec, (1, 1) if spec.kind == "audio" else DEFAULT_VIDEO_SIZE),
            "vastXmlUrl": snippet,
            "vastRedirectType": "LINEAR",
            "duration": _duration_ms(spec),
        }
    if not spec.asset_url:
        raise _invalid(
            f"Creative '{spec.creative_id}' has neither a media file nor a VAST URL.",
            "asset_url",
            "NO_ASSET",
        )
    duration = _duration_ms(spec)
    if spec.kind == "video":
        size = _size(spec, DEFAULT_VIDEO_SIZE)
        mime = VIDEO_MIME.get(_extension(spec.asset_url), "VIDEO_MP4")
        return {
            "xsi_type": "VideoRedirectCreative",
            **base,
            "size": size,
            **_click(spec),
            "duration": duration,
            "videoAssets": [
                _redirect_asset(spec.asset_url, duration, size, mime, "RATIO_SCALABLE")
            ],
        }
    size = {"width": 1, "height": 1, "isAspectRatio": False}
    mime = AUDIO_MIME.get(_extension(spec.asset_url), "AUDIO_MP3")
    return {
        "xsi_type": "AudioRedirectCreative",
        **base,
        "size": size,
        **_click(spec),
        "duration": duration,
        "audioAssets": [_redirect_asset(spec.asset_url, duration, size, mime, "NOT_SCALABLE")],
    }


def _redirect_asset(
    url: str, duration: int, size: dict[str, Any], mime: str, scalable: str
) -> dict[str, Any]:
    return {
        "redirectUrl": url,
        "metadata": {
            "scalableType": scalable,
            "duration": duration,
            "size": size,
            "mimeType": mime,
            "deliveryType": "PROGRESSIVE",
        },
    }


def association(line_item_id: int, creative_id: int) -> dict[str, Any]:
    return {"lineItemId": line_item_id, "creativeId": creative_id}
