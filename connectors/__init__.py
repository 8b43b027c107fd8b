"""Connectors: one module per platform. They know their platform and nothing about our database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from connectors.base import Connector

#: The platforms ``make_connector`` can build a connector for.
PLATFORMS = ("x", "mastodon")


def make_connector(platform: str, settings: Mapping[str, Any], credentials: Mapping[str, str],
                   http: httpx.AsyncClient | None = None) -> Connector:
    """The connector for one account, from its settings and decrypted credentials.

    ``settings["base_url"]`` replaces the platform's public API root (tests and the demo point it at
    the fake platform); ``timeout`` (seconds) bounds every call. X needs no ``http``: tweepy brings its
    own requests session. Mastodon uses ``http`` when given (and leaves closing it to the caller),
    else a client of its own that ``aclose()`` closes.
    """
    timeout = float(settings.get("timeout") or 30)
    if platform == "x":
        from connectors.x import X_API, XConnector

        options: dict[str, Any] = {k: settings[k] for k in ("user_id", "page_size", "direct_messages")
                                   if settings.get(k) is not None}
        return XConnector.from_credentials(credentials, base_url=settings.get("base_url") or X_API,
                                           timeout=timeout, **options)
    if platform == "mastodon":
        import httpx

        from connectors.base import AuthExpired
        from connectors.mastodon import MastodonConnector

        base_url = settings.get("base_url")
        if not base_url and (http is None or not str(http.base_url)):
            raise ValueError("a Mastodon account needs settings.base_url: its instance")
        if not credentials.get("access_token"):
            raise AuthExpired("Mastodon credentials lack access_token")
        return MastodonConnector(http or httpx.AsyncClient(timeout=timeout), credentials["access_token"],
                                 base_url=base_url, owns_http=http is None,
                                 **{k: int(settings[k]) for k in ("page_size", "reply_max_length")
                                    if settings.get(k) is not None})
    raise ValueError(f"there is no connector for platform {platform!r}")
