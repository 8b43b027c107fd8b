"""Serve the fake platforms on their own: ``python -m connectors.fake --port 8765 [--seed accounts.json]``.

The seed file names the accounts to create, optionally with fixed credentials so a configured
Webcare keeps working across restarts:

    {"x": [{"username": "gemeente", "access_token": "...", ...}],
     "mastodon": [{"username": "gemeente", "access_token": "..."}]}
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import uvicorn

from connectors.fake import FakePlatform, create_app
from connectors.fake.control import CREDENTIALS


def seed(fake: FakePlatform, accounts: dict[str, Any]) -> None:
    for entry in accounts.get("x", []):
        fake.add_x_account(entry["username"], entry.get("name"), dm_access=entry.get("dm_access", True),
                           **{k: v for k, v in entry.items() if k in CREDENTIALS})
    for entry in accounts.get("mastodon", []):
        fake.add_mastodon_account(entry["username"], entry.get("display_name"), entry.get("access_token"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m connectors.fake", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=Path, help="a JSON file of accounts to create")
    parser.add_argument("--chaos", type=float, default=0.0, help="probability of a random 429, 503 or slow answer")
    parser.add_argument("--mastodon-domain", default="social.example")
    args = parser.parse_args(argv)

    fake = FakePlatform(mastodon_domain=args.mastodon_domain)
    fake.chaos = args.chaos
    if args.seed:
        seed(fake, json.loads(args.seed.read_text()))
    root = f"http://{args.host}:{args.port}"
    lines = [f"X API v2:  {root}/x", f"Mastodon:  {root}/mastodon", f"Control:   {root}/_control"]
    lines += [f"x/{a.user.username}: {json.dumps(a.credentials())}" for a in fake.x_accounts.values()]
    lines += [f"mastodon/{m.username}: {json.dumps({'access_token': m.access_token})}"
              for m in fake.m_accounts.values() if m.access_token]
    print("\n".join(lines), flush=True)
    uvicorn.run(create_app(fake), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
