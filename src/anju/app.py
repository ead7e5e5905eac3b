"""The HTTP application: ``create_app(platform)`` builds one FastAPI app around a Platform."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI
from prometheus_client.registry import Collector

from anju import __version__
from anju.api import docs, health, metrics
from anju.api.deps import check_transaction_scope
from anju.api.errors import install_error_handlers
from anju.api.metrics import HttpMetrics, MetricsMiddleware
from anju.api.middleware import (
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    UnexpectedErrorMiddleware,
)
from anju.background import platform_sweepers
from anju.biometrics.endpoints import IMAGE_PATHS
from anju.biometrics.remote import MAX_BODY_BYTES as FACE_CHECK_BODY_BYTES
from anju.people.consent_gate import identity_verification_consent
from anju.people.endpoints import IMAGE_PATHS as PEOPLE_IMAGE_PATHS
from anju.people.verification.config import configured_provider
from anju.platform import Platform
from anju.protocol.firmware import MAX_PACKAGE_BYTES

FIRMWARE_UPLOAD_PATH = "/api/v1/firmware/packages"

DESCRIPTION = (
    "安居 anju — 实名制智能门锁与租赁住房平台，个人信息以国密算法（SM2/SM3/SM4）按设计保护。\n\n"
    "anju — real-name smart locks and rental housing; personal information protected by design "
    "with SM2/SM3/SM4. Errors always have the shape "
    '`{"error": {"code", "message", "details"}}`; see docs/api.md for the codes.'
)


def include_domain_routers(app: FastAPI) -> None:
    """THE one place where domain routers are registered on the app."""
    from anju.access.endpoints import router as access_router
    from anju.accounts.endpoints import router as accounts_router
    from anju.alarms.endpoints import router as alarms_router
    from anju.audit.endpoints import router as audit_router
    from anju.biometrics.endpoints import router as biometrics_router
    from anju.consent.endpoints import router as consent_router
    from anju.devices.command_endpoints import router as device_commands_router
    from anju.devices.endpoints import router as devices_router
    from anju.firmware.endpoints import router as firmware_router
    from anju.people.endpoints import router as people_router
    from anju.reporting.endpoints import router as reporting_router
    from anju.retention.endpoints import router as retention_router
    from anju.unlocks.endpoints import router as unlocks_router
    from anju.webhooks.endpoints import router as webhooks_router

    app.include_router(accounts_router)
    app.include_router(audit_router)
    app.include_router(devices_router)
    app.include_router(device_commands_router)
    app.include_router(firmware_router)
    app.include_router(biometrics_router)
    app.include_router(people_router)
    app.include_router(access_router)
    app.include_router(unlocks_router)
    app.include_router(alarms_router)
    app.include_router(webhooks_router)
    app.include_router(consent_router)
    app.include_router(retention_router)
    app.include_router(reporting_router)


def create_app(platform: Platform, *, collectors: Iterable[Collector] = ()) -> FastAPI:
    """The FastAPI app serving ``platform``: routers, health, metrics, docs, one error model.

    ``collectors`` add live metrics of parts running in the same process (``anju serve``: the
    gateway's, :class:`anju.gateway.metrics.GatewayCollector`) to ``/metrics``.
    """
    app = FastAPI(
        title="anju 安居 API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # served by anju.api.docs from packaged assets, never a CDN
        redoc_url=None,
    )
    app.state.platform = platform
    app.state.identity_provider = configured_provider(platform.settings.ctid_config, platform.clock)
    # N3 / L4: nobody is registered over HTTP without consent to the privacy notice in force.
    app.state.consent_check = identity_verification_consent(platform)
    app.state.sweepers = platform_sweepers()
    app.state.metrics = HttpMetrics()
    for collector in collectors:
        app.state.metrics.registry.register(collector)

    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    docs.install_docs(app)
    include_domain_routers(app)
    check_transaction_scope(app)

    # Added inner to outer: the last one added sees the request first.
    default = platform.settings.max_request_bytes
    # Larger bodies on exactly these paths: firmware package files (images up to 4 MiB) and
    # remote face checks (a document photo and a frame sequence, base64 in JSON).
    larger = {FIRMWARE_UPLOAD_PATH: max(MAX_PACKAGE_BYTES, default)}
    larger.update(
        dict.fromkeys((*IMAGE_PATHS, *PEOPLE_IMAGE_PATHS), max(FACE_CHECK_BODY_BYTES, default))
    )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=default, larger=larger)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestContextMiddleware)
    return app
