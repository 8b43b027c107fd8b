"""Connectors: one module per platform. They know their platform and nothing about our database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from connectors.base import Connector

#: The platforms ``make_connector`` can build a connector for.
PLATFORMS = ("x", "mastodon", "facebook", "instagram", "email")


def reply_window(platform: str, thread_id: str | None) -> dt.timedelta | None:
    """How long after the person's last message a reply in this thread may go out (None: no limit):
    Messenger and Instagram direct messages allow 24 hours."""
    if platform in ("facebook", "instagram"):
        from connectors.graph_threads import reply_window as graph_window

        return graph_window(thread_id)
    return None


def check_settings(platform: str, settings: Mapping[str, Any]) -> None:
    """Raise ValueError naming what a platform's account settings lack or get wrong."""
    if platform == "facebook" and not _digits(settings.get("page_id")):
        raise ValueError("a facebook account needs settings.page_id: the page's numeric id")
    if platform == "instagram" and not _digits(settings.get("ig_user_id")):
        raise ValueError("an instagram account needs settings.ig_user_id: the business account's numeric id")
    if platform == "instagram" and settings.get("page_id") is not None and not _digits(settings.get("page_id")):
        raise ValueError("settings.page_id must be the numeric id of the page linked to the Instagram account")
    if platform == "email":
        from connectors.email import check_email_settings

        check_email_settings(settings)


def _digits(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool) and str(value).isdigit()


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
    if platform in ("facebook", "instagram"):
        return _graph_connector(platform, settings, credentials, http, timeout)
    if platform == "email":
        from connectors.email import EmailConnector

        return EmailConnector.from_settings(settings, credentials, timeout=timeout)
    raise ValueError(f"there is no connector for platform {platform!r}")


def _graph_connector(platform: str, settings: Mapping[str, Any], credentials: Mapping[str, str],
                     http: httpx.AsyncClient | None, timeout: float) -> Connector:
    import httpx

    from connectors.base import AuthExpired
    from connectors.graph import GRAPH_API, GRAPH_VERSION, Graph

    check_settings(platform, settings)
    token = credentials.get("page_access_token" if platform == "facebook" else "access_token")
    if not token:
        raise AuthExpired(f"the {platform} credentials lack their access token")
    graph = Graph(http or httpx.AsyncClient(timeout=timeout), token, base_url=settings.get("base_url") or GRAPH_API,
                  version=str(settings.get("graph_version") or GRAPH_VERSION), app_secret=credentials.get("app_secret"),
                  owns_http=http is None, timeout=float(settings["timeout"]) if settings.get("timeout") else None)
    if platform == "facebook":
        from connectors.facebook import FacebookConnector

        return FacebookConnector(graph, str(settings["page_id"]),
                                 messenger=settings.get("messenger", True) is not False,
                                 **{k: int(settings[k]) for k in ("lookback_days", "page_size", "posts_per_fetch")
                                    if settings.get(k) is not None})
    from connectors.instagram import InstagramConnector

    page_id = settings.get("page_id")
    return InstagramConnector(graph, str(settings["ig_user_id"]), str(page_id) if page_id else None,
                              direct_messages=settings.get("direct_messages", True) is not False)
