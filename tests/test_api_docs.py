"""OpenAPI and the interactive docs work offline: every asset comes from this server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from anju.app import create_app
from anju.platform import Platform

URL_IN_HTML = re.compile(r"""(?:src|href|url)\s*[=:(]\s*["']?([^"')\s>]+)""", re.IGNORECASE)


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(platform))
    async with httpx.AsyncClient(transport=transport, base_url="http://anju.test") as client:
        yield client


def references(html: str) -> list[str]:
    return URL_IN_HTML.findall(html)


@pytest.mark.req("R1", "R12")
async def test_openapi_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    assert "/healthz" in spec["paths"]
    assert "/readyz" in spec["paths"]
    assert "/docs" not in spec["paths"]


@pytest.mark.req("R1", "R12")
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_reference_no_external_host(client: httpx.AsyncClient, page: str) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    refs = references(html)
    assert "/openapi.json" in refs
    assert refs, "the page loads its scripts from somewhere"
    for ref in refs:
        assert ref.startswith("/"), f"{page} references {ref}"
        assert not ref.startswith("//"), f"{page} references {ref}"
    assert "http://" not in html
    assert "https://" not in html
    # The browser is told the same: nothing but this origin.
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "http" not in csp
    # And every asset it names is actually served here.
    for ref in refs:
        asset = await client.get(ref)
        assert asset.status_code == 200, ref


@pytest.mark.req("R1")
async def test_docs_assets_are_cacheable_but_api_responses_are_not(
    client: httpx.AsyncClient,
) -> None:
    asset = await client.get("/docs-assets/swagger-ui-bundle.js")
    assert asset.status_code == 200
    assert "max-age" in asset.headers["cache-control"]
    assert (await client.get("/healthz")).headers["cache-control"] == "no-store"
