#!/usr/bin/env python3
"""Print a .env for docker-compose.yml with fresh secrets: python3 deploy/make-env.py > .env

Keep the file private (chmod 600 .env): it holds the admin token and the importer's secrets.
Options: --public-url https://ferry.example.org (how importers reach the proxy), --port 8080.
"""

from __future__ import annotations

import argparse
import base64
import secrets


def generate(public_url: str | None, port: int, importer_name: str) -> dict[str, str]:
    values = {
        # The project's name (containers ferry-backend-1-1 …, volumes ferry_uploads …) with compose v1 and v2.
        "COMPOSE_PROJECT_NAME": "ferry",
        "FERRY_POSTGRES_PASSWORD": secrets.token_urlsafe(24),
        "FERRY_ADMIN_TOKEN": secrets.token_urlsafe(32),
        "FERRY_IMPORTER_NAME": importer_name,
        "FERRY_IMPORTER_TOKEN": secrets.token_urlsafe(32),
        "FERRY_IMPORTER_WEBHOOK_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "FERRY_HTTP_PORT": str(port),
    }
    if public_url:
        values["FERRY_PUBLIC_URL"] = public_url.rstrip("/")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--public-url", help="URL importers use to reach nginx (default: http://nginx inside compose)")
    parser.add_argument("--port", type=int, default=8080, help="host port nginx listens on")
    parser.add_argument("--importer-name", default="local", help="host name of this machine's importer")
    args = parser.parse_args()
    for key, value in generate(args.public_url, args.port, args.importer_name).items():
        print(f"{key}={value}")


if __name__ == "__main__":
    main()
