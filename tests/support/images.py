"""What the tests ask a real engine about images, in one place."""

from __future__ import annotations

import docker
import docker.errors


def image_present(client: docker.DockerClient, ref: str) -> bool:
    """Whether the engine has an image by this reference (a tag or an id)."""
    try:
        client.api.inspect_image(ref)
        return True
    except docker.errors.ImageNotFound:
        return False
