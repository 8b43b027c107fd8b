"""A fake X (API v2), Mastodon and Graph API (Facebook Pages, Instagram) that speak the real wire formats,
for tests and the demo.

One ``FakePlatform`` holds the state; ``create_app`` serves it:

    /x/2/...           the X API v2: point the X connector's ``base_url`` at ``<root>/x``
    /mastodon/api/...  the Mastodon API: point the Mastodon connector's ``base_url`` at ``<root>/mastodon``
    /graph/v21.0/...   the Graph API: point the Facebook and Instagram connectors' ``base_url`` at ``<root>/graph``
    /_control/...      set up accounts, inject mentions and DMs, inject faults, list posts (see ``control``)

Run it on its own with ``python -m connectors.fake --port 8765``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount

from connectors.fake.control import CONTROL_ERRORS, Control
from connectors.fake.graph import create_graph_app
from connectors.fake.mastodon import create_mastodon_app
from connectors.fake.state import FakePlatform, Fault, Posted
from connectors.fake.x import create_x_app

__all__ = ["FakePlatform", "Fault", "Posted", "create_app"]


def create_app(fake: FakePlatform | None = None) -> Starlette:
    fake = fake or FakePlatform()
    control = Starlette(routes=Control(fake).routes(), exception_handlers=CONTROL_ERRORS)
    app = Starlette(routes=[Mount("/x", create_x_app(fake)), Mount("/mastodon", create_mastodon_app(fake)),
                            Mount("/graph", create_graph_app(fake)),
                            Mount("/_control", control)])
    app.state.fake = fake
    return app


