"""Data Docs that open without the internet: their CDN styles and scripts, kept locally.

    hcw data-docs-assets      # `make setup`: fetch once, check integrity

`fetch()` downloads each package of `data_docs_assets.yml` from the npm registry, checks it
against its pinned sha512, and keeps the files the Data Docs use in .venv/share/data_docs_assets/.
`localise(site)` copies them into a built Data Docs site and points every page at the copies.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import re
import shutil
import tarfile
import urllib.request
from pathlib import Path

import yaml

from common import settings

log = logging.getLogger(__name__)

CONFIG = Path(__file__).with_name("data_docs_assets.yml")
DEFAULT_REGISTRY = "https://registry.npmjs.org"
# The Great Expectations logo is an image on S3, fetched with the context's id: shown as text.
REMOTE_LOGO = re.compile(r"<img[^>]*great-expectations-web-assets[^>]*>")


class IntegrityError(RuntimeError):
    """A downloaded package does not match its pinned hash."""


def assets_dir() -> Path:
    """Installed with the project's other dependencies, in its virtual environment."""
    return settings.VENV_BIN.parent / "share" / "data_docs_assets"


def _packages() -> list[dict]:
    return yaml.safe_load(CONFIG.read_text())["packages"]


def _check(data: bytes, integrity: str, name: str) -> None:
    algorithm, expected = integrity.split("-", 1)
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise IntegrityError(f"{name}: the download does not match its pinned {algorithm}")


def fetch(registry: str | None = None) -> int:
    """Download what is missing; return how many packages were fetched."""
    registry = (registry or os.environ.get("NPM_REGISTRY") or DEFAULT_REGISTRY).rstrip("/")
    fetched = 0
    for spec in _packages():
        folder = assets_dir() / spec["package"]
        wanted = [*spec["files"].values(), *spec.get("folders", [])]
        if all((folder / path).exists() for path in wanted):
            continue
        url = f"{registry}/{spec['tarball']}"
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
        _check(data, spec["integrity"], spec["package"])
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive.getmembers():
                inside = member.name.removeprefix("package/")
                keep = inside in spec["files"].values() or any(
                    inside.startswith(f"{kept}/") for kept in spec.get("folders", [])
                )
                if keep and member.isfile():
                    target = folder / inside
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.extractfile(member).read())
        fetched += 1
        log.info("Data Docs assets: %s", spec["tarball"].rsplit("/", 1)[-1])
    return fetched


def localise(site: Path) -> bool:
    """Copy the assets into `site` and point its pages at them; False (and the CDN links kept)
    when they were never fetched."""
    source = assets_dir()
    mapping = {
        url: Path(spec["package"]) / path
        for spec in _packages()
        for url, path in spec["files"].items()
    }
    if not all((source / path).exists() for path in mapping.values()):
        log.warning("Data Docs assets missing (run `make setup`): the pages load them from CDNs")
        return False
    vendor = site / "static" / "vendor"
    shutil.copytree(source, vendor, dirs_exist_ok=True)
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        for url, path in mapping.items():
            local = os.path.relpath(vendor / path, page.parent)
            text = text.replace(f'"{url}"', f'"{local}"')
        text = REMOTE_LOGO.sub("<strong>Great Expectations</strong>", text)
        page.write_text(text, encoding="utf-8")
    return True
