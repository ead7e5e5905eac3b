"""``anju consent …`` (receipts, the receipt key) and ``anju retention …`` (policies, sweep)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from anju.background import platform_sweepers
from anju.cli.common import DataDirOption, fail, run, settings_for
from anju.consent.notices import build_content, items_from_json
from anju.consent.receipts import CONSENT_SIGNER, load_receipt, verify_receipt
from anju.consent.service import ConsentService
from anju.errors import AnjuError, ConfigurationError
from anju.kit.crypto import SM2PublicKey
from anju.platform import open_key_provider, open_platform
from anju.retention.policies import resolve_policies
from anju.retention.sweepers import standard_sweepers
from anju.retention.tasks import DEFAULT_BATCH, SYSTEM_ACTOR, run_sweep

app = typer.Typer(help="告知与同意 / Notice and consent: notices, receipts.", no_args_is_help=True)
retention_app = typer.Typer(
    help="保存期限 / Retention: policies and the sweep.", no_args_is_help=True
)


OrgOption = Annotated[str, typer.Option("--org", help="The organisation's id.")]
CLI_ACTOR = "cli"


@app.command("publish")
def publish_command(
    notice: Annotated[
        Path,
        typer.Argument(
            help="Notice JSON: kind, title_zh, title_en, text_zh, text_en, items "
            "[{purpose, categories, required}] (the body of POST /api/v1/notices).",
            exists=True,
            dir_okay=False,
        ),
    ],
    org: OrgOption,
    data_dir: DataDirOption = None,
) -> None:
    """发布告知新版本 / Publish the next version of a notice from a JSON file (audited)."""
    settings = settings_for(data_dir)
    try:
        raw = json.loads(notice.read_text(encoding="utf-8"))
        content = build_content(
            str(raw["kind"]),
            title_zh=str(raw["title_zh"]),
            title_en=str(raw["title_en"]),
            text_zh=str(raw["text_zh"]),
            text_en=str(raw["text_en"]),
            items=[
                (str(i["purpose"]), [str(c) for c in i["categories"]], bool(i["required"]))
                for i in raw["items"]
            ],
        )
    except (ValueError, KeyError, TypeError) as exc:
        fail(f"告知文件无效 / bad notice file: {type(exc).__name__} {exc}"[:300], code=2)
    except AnjuError as exc:
        fail(f"{exc.message} [{exc.code}]", code=2)

    async def go() -> str:
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            row = await ConsentService(platform, session).publish(org, CLI_ACTOR, content)
            return f"{row.kind} v{row.version} SM3 {bytes(row.content_hash).hex()}"

    typer.echo(run(go()))


@app.command("notices")
def notices_command(org: OrgOption, data_dir: DataDirOption = None) -> None:
    """现行告知 / List the organisation's notices in force (kind, version, hash, purposes)."""
    settings = settings_for(data_dir)

    async def go() -> list[str]:
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            rows = await ConsentService(platform, session).current_notices(org)
            return [
                f"{r.kind:20} v{r.version:<4} {bytes(r.content_hash).hex()[:16]}…  "
                + ", ".join(
                    f"{i.purpose.value}{'' if i.required else ' (optional)'}"
                    for i in items_from_json(r.items)
                )
                for r in rows
            ]

    for line in run(go()):
        typer.echo(line)


@app.command("verify-receipt")
def verify_receipt_command(
    receipt: Annotated[
        Path, typer.Argument(help="The receipt JSON file.", exists=True, dir_okay=False)
    ],
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="The platform's consent public key (PEM, from `anju consent receipt-key` or "
            "GET /api/v1/consents/receipt-key); default: the key in this data dir's keyring.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """验证同意回执 / Check a consent receipt's SM2 signature; exit 1 if it was altered."""
    try:
        if public_key is not None:
            key = SM2PublicKey.from_pem(public_key.read_text())
        else:
            key = open_key_provider(settings_for(data_dir)).signer(CONSENT_SIGNER).public_key
    except AnjuError as exc:  # no usable key: a setup problem, not a verdict on the receipt
        fail(f"{exc.message} [{exc.code}]", code=2)
    try:
        body = verify_receipt(load_receipt(receipt.read_bytes()), key)
    except AnjuError as exc:
        fail(f"回执无效 / receipt NOT valid: {exc.message} [{exc.code}]")
    notice = body["notice"]
    typer.echo(
        f"回执有效 / receipt valid: {body['action']} {body['purpose']} — "
        f"{notice['kind']} v{notice['version']} (SM3 {notice['hash'][:16]}…) at {body['at']}"
    )


@app.command("receipt-key")
def receipt_key_command(data_dir: DataDirOption = None) -> None:
    """回执验签公钥 / Print the SM2 public key (PEM) consent receipts verify with."""
    try:
        key = open_key_provider(settings_for(data_dir)).signer(CONSENT_SIGNER).public_key
    except AnjuError as exc:
        fail(exc.message, code=2)
    typer.echo(key.to_pem(), nl=False)


@retention_app.command("policies")
def policies_command(
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """保存策略 / Print the retention policies in force (defaults + settings overrides)."""
    settings = settings_for(data_dir)
    try:
        policies = resolve_policies(settings.retention_days)
    except ConfigurationError as exc:
        fail(exc.message, code=2)
    swept = set(standard_sweepers().kinds())
    if as_json:
        rows = [p.as_dict() | {"swept": p.kind in swept} for p in policies.values()]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for p in policies.values():
        mark = "swept" if p.kind in swept else "-"
        typer.echo(f"{p.kind:24} {p.anchor:18} P{p.days}D  {p.action.value:12} {mark}")


@retention_app.command("sweep")
def sweep_command(
    data_dir: DataDirOption = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=10_000)] = DEFAULT_BATCH,
) -> None:
    """立即清理 / Run the retention sweep now and print what it removed (counts per kind)."""
    settings = settings_for(data_dir)

    async def go() -> str:
        async with open_platform(settings) as platform:
            report = await run_sweep(
                platform, actor=SYSTEM_ACTOR, batch_size=batch_size, registry=platform_sweepers()
            )
        counts = ", ".join(f"{kind}={count}" for kind, count in report.counts.items())
        return f"run {report.run_id}: removed {report.removed} ({counts})"

    typer.echo(run(go()))
