"""Interactive API docs (Swagger UI at /docs, ReDoc at /redoc) served without any CDN.

Deployments may be offline, and a docs page that pulls scripts from a third-party host is a
supply-chain risk on an admin network. The Swagger UI and ReDoc bundles come from the
``fastapi-offline`` package (MIT; Swagger UI is Apache-2.0, ReDoc MIT) and are served from
``/docs-assets``; the pages' Content-Security-Policy only allows this origin.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

from anju.api.middleware import DOCS_ASSETS_PREFIX

ASSETS_PACKAGE = "fastapi_offline"

# Swagger UI needs inline bootstrap script and styles, ReDoc a blob: worker for search.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def assets_directory() -> Path:
    """Where the packaged Swagger UI / ReDoc bundles are."""
    return Path(str(files(ASSETS_PACKAGE).joinpath("static")))


def _with_csp(page: HTMLResponse) -> HTMLResponse:
    page.headers["content-security-policy"] = DOCS_CSP
    return page


def install_docs(app: FastAPI) -> None:
    """Mount the bundles and add the /docs and /redoc pages (pass docs_url=None to FastAPI)."""
    app.mount(DOCS_ASSETS_PREFIX, StaticFiles(directory=assets_directory()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _with_csp(
            get_swagger_ui_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} — Swagger UI",
                swagger_js_url=f"{root}{DOCS_ASSETS_PREFIX}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{DOCS_ASSETS_PREFIX}/swagger-ui.css",
                swagger_favicon_url=f"{root}{DOCS_ASSETS_PREFIX}/favicon.png",
                oauth2_redirect_url=None,
                # No online validator badge (it would call validator.swagger.io).
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _with_csp(
            get_redoc_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} — ReDoc",
                redoc_js_url=f"{root}{DOCS_ASSETS_PREFIX}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{DOCS_ASSETS_PREFIX}/favicon.png",
                with_google_fonts=False,
            )
        )
