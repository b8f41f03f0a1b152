"""The image catalog per host: what each lab host's engine has, and removing an image through its importer."""

from __future__ import annotations

import asyncio
import logging

from . import store as st
from .errors import FerryError, NotFound
from .models import Host
from .services import Services

log = logging.getLogger("ferry.catalog")


async def host_images(services: Services) -> list[dict]:
    """The catalog per host: the importer's own list, or (host down) what completed jobs left there."""
    async with services.store.read() as session:
        hosts = await st.list_hosts(session)
        done = await st.list_jobs(session, state="succeeded", limit=5000)

    async def one(host: Host) -> dict:
        try:
            images = await services.importers.images(host)
            return {"host": host.name, "reachable": True, "images": images}
        except (FerryError, ValueError) as exc:
            log.info("images of %s: %s", host.name, exc)
            seen: dict[str, dict] = {}
            for job in done:
                if job.host == host.name and job.result and job.result.get("id") not in seen:
                    seen[job.result["id"]] = {
                        "tags": job.result.get("tags") or [job.result.get("ref")],
                        "id": job.result["id"],
                        "size": job.result.get("size"),
                        "created": None,
                        "archive_sha256": None,
                    }
            return {"host": host.name, "reachable": False, "images": list(seen.values())}

    return list(await asyncio.gather(*(one(h) for h in hosts)))


async def remove_host_image(services: Services, host_name: str, image_id: str) -> dict:
    """Ask a host's importer to remove an image; its refusal (in use, not there) comes back with its code."""
    async with services.store.read() as session:
        host = await session.get(Host, host_name)
    if host is None:
        raise NotFound(f"no host {host_name!r}", code="unknown_host")
    answer = await services.importers.remove_image(host, image_id)
    log.info("image %s removed from %s", image_id, host_name)
    return {"host": host_name, "id": image_id, "removed": list(answer.get("removed", []))}
