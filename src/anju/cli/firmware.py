"""``anju firmware …``: sign, certify offline signers, upload, list, and staged rollouts.

The CLI is the platform operator's tool (actor "cli", no second factor; docs/firmware.md).
Rollouts made here belong to the platform (``org_id`` NULL) unless ``--org`` names one.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from anju.cli.common import DataDirOption, fail, run, settings_for
from anju.devices.ca import certify_firmware_signer, platform_firmware_certificate
from anju.errors import AnjuError
from anju.firmware.rules import (
    ACTIONS,
    DEFAULT_COMMAND_TTL_SECONDS,
    DEFAULT_FAILURE_PCT,
    DEFAULT_STAGES,
    DEFAULT_SUCCESS_PCT,
)
from anju.firmware.schemas import rollout_device_out, rollout_out
from anju.firmware.service import FirmwareService, RolloutSpec, run_firmware_boundary
from anju.kit.clock import SystemClock
from anju.kit.crypto import SM2PrivateKey, SM2PublicKey
from anju.kit.keyring import Signer
from anju.platform import open_key_provider, open_platform
from anju.protocol.certificates import Certificate
from anju.protocol.firmware import ANY_PRODUCT, MAX_IMAGE_BYTES, MAX_PACKAGE_BYTES, sign_package
from anju.settings import Settings

T = TypeVar("T")

app = typer.Typer(
    help="固件：签名、上传、分阶段升级 / Firmware: sign, upload, staged rollouts.",
    no_args_is_help=True,
)
rollout_app = typer.Typer(help="分阶段升级 / Staged rollouts.", no_args_is_help=True)
app.add_typer(rollout_app, name="rollout")

RolloutArg = Annotated[str, typer.Argument(help="Rollout id.")]


def _with_service(settings: Settings, work: Callable[[FirmwareService], Awaitable[T]]) -> T:
    async def go() -> T:
        async with open_platform(settings) as platform:
            return await run_firmware_boundary(platform, work)

    return run(go())


def _read(path: Path, limit: int) -> bytes:
    try:
        if path.stat().st_size > limit:
            fail(f"{path} is larger than {limit} bytes")
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")


@app.command("sign")
def sign(
    image: Annotated[Path, typer.Argument(help="The firmware image file.")],
    product: Annotated[str, typer.Option("--product", help="Product key, e.g. lock-x1.")],
    version: Annotated[str, typer.Option("--version", help="Version, e.g. 1.2.0.")],
    out: Annotated[Path, typer.Option("--out", help="Package file to write.")],
    min_from: Annotated[
        str | None, typer.Option("--min-from", help="Oldest installed version it may update.")
    ] = None,
    signer_key: Annotated[
        Path | None,
        typer.Option("--signer-key", help="Offline signing: an SM2 PKCS#8 PEM private key."),
    ] = None,
    signer_cert: Annotated[
        Path | None,
        typer.Option("--signer-cert", help="Offline signing: its certificate (certify-signer)."),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Sign IMAGE into a package: with the platform keyring's "firmware" key, or offline with
    --signer-key and --signer-cert (no platform needed)."""
    if (signer_key is None) != (signer_cert is None):
        fail("--signer-key and --signer-cert go together")
    if out.exists():
        fail(f"{out} already exists; refusing to overwrite it")
    data = _read(image, MAX_IMAGE_BYTES)
    now = SystemClock().now()
    signer: Signer
    try:
        if signer_key is not None and signer_cert is not None:
            signer = SM2PrivateKey.from_pkcs8_pem(signer_key.read_text())
            certificate = Certificate.decode(signer_cert.read_bytes())
        else:
            settings = settings_for(data_dir)
            keys = open_key_provider(settings)
            signer = keys.signer("firmware")
            certificate = platform_firmware_certificate(
                keys, origin=settings.audit_origin, now=int(now.timestamp())
            )
        package = sign_package(
            data,
            product=product,
            version=version,
            created_ms=int(now.timestamp() * 1000),
            signer=signer,
            certificate=certificate,
            min_from=min_from,
        )
    except AnjuError as exc:
        fail(f"{exc.message} [{exc.code}]")
    except OSError as exc:
        fail(f"cannot read the signer files: {exc.strerror}")
    out.write_bytes(package.encode())
    typer.echo(
        f"已签名 / signed {product} {version}: {len(data)} bytes, "
        f"sm3 {package.manifest.sm3.hex()} → {out}"
    )


@app.command("certify-signer")
def certify_signer(
    public_key: Annotated[Path, typer.Option("--public-key", help="The signer's SM2 public PEM.")],
    name: Annotated[str, typer.Option("--name", help="Signer name, e.g. release.example.com.")],
    out: Annotated[Path, typer.Option("--out", help="Certificate file to write (binary).")],
    product: Annotated[
        str, typer.Option("--product", help=f"Limit to one product ({ANY_PRODUCT}: every one).")
    ] = ANY_PRODUCT,
    data_dir: DataDirOption = None,
) -> None:
    """Issue a FIRMWARE certificate (device CA) for an offline signing key."""
    if out.exists():
        fail(f"{out} already exists; refusing to overwrite it")
    try:
        key = SM2PublicKey.from_pem(public_key.read_text())
        keys = open_key_provider(settings_for(data_dir))
        now = int(SystemClock().now().timestamp())
        cert = certify_firmware_signer(keys, key, name=name, product=product, now=now)
    except AnjuError as exc:
        fail(f"{exc.message} [{exc.code}]")
    except OSError as exc:
        fail(f"cannot read {public_key}: {exc.strerror}")
    out.write_bytes(cert.encode())
    typer.echo(f"已签发 / certified signer {name} ({product}) until {cert.not_after} → {out}")


@app.command("upload")
def upload(
    package: Annotated[Path, typer.Argument(help="A package file from `anju firmware sign`.")],
    data_dir: DataDirOption = None,
) -> None:
    """Verify a package completely and store it (tampered or unsigned packages are refused)."""
    data = _read(package, MAX_PACKAGE_BYTES)

    async def work(svc: FirmwareService) -> str:
        row = await svc.upload("cli", data)
        return f"{row.id}\t{row.product_key}\t{row.version}\t{row.size}"

    typer.echo(_with_service(settings_for(data_dir), work))


@app.command("list")
def list_packages(
    product: Annotated[str | None, typer.Option("--product", help="Only this product.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """List packages: id, product, version, size, signer, uploaded at."""

    async def work(svc: FirmwareService) -> list[str]:
        rows = await svc.packages(None, product, limit=500, offset=0)
        return [
            f"{p.id}\t{p.product_key}\t{p.version}\t{p.size}\t{p.signer}\t"
            f"{p.uploaded_at.isoformat()}"
            for p in rows
        ]

    lines = _with_service(settings_for(data_dir), work)
    typer.echo("package\tproduct\tversion\tsize\tsigner\tuploaded")
    for line in lines:
        typer.echo(line)


def _stages(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        fail("--stages: comma-separated percentages, e.g. 1,10,50,100")


@rollout_app.command("create")
def rollout_create(
    package: Annotated[str, typer.Option("--package", help="Package id.")],
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation.")] = None,
    device: Annotated[
        list[str] | None, typer.Option("--device", help="Explicit device id (repeatable).")
    ] = None,
    from_version: Annotated[
        str | None, typer.Option("--from-version", help="Only devices reporting this version.")
    ] = None,
    stages: Annotated[str, typer.Option("--stages", help="Cumulative percentages.")] = ",".join(
        str(s) for s in DEFAULT_STAGES
    ),
    success_threshold: Annotated[
        int, typer.Option("--success-threshold", help="Percent updated to start the next stage.")
    ] = DEFAULT_SUCCESS_PCT,
    failure_threshold: Annotated[
        int, typer.Option("--failure-threshold", help="Percent failed that pauses the rollout.")
    ] = DEFAULT_FAILURE_PCT,
    ttl: Annotated[
        int, typer.Option("--ttl", help="Seconds an offer waits for an offline device.")
    ] = DEFAULT_COMMAND_TTL_SECONDS,
    data_dir: DataDirOption = None,
) -> None:
    """Create a draft rollout (start it with `anju firmware rollout start`)."""
    spec = RolloutSpec(
        package_id=package,
        device_ids=tuple(device) if device else None,
        from_version=from_version,
        stages=_stages(stages),
        success_threshold_pct=success_threshold,
        failure_threshold_pct=failure_threshold,
        command_ttl_seconds=ttl,
    )

    async def work(svc: FirmwareService) -> dict[str, Any]:
        rollout = await svc.create_rollout("cli", org, spec)
        return rollout_out(await svc.summarise(rollout)).model_dump(mode="json")

    _print(_with_service(settings_for(data_dir), work))


def _act(action: str) -> Callable[..., None]:
    def command(rollout: RolloutArg, data_dir: DataDirOption = None) -> None:
        async def work(svc: FirmwareService) -> dict[str, Any]:
            row = await svc.act("cli", None, rollout, action)
            return rollout_out(await svc.summarise(row)).model_dump(mode="json")

        _print(_with_service(settings_for(data_dir), work))

    command.__doc__ = f"{action.capitalize()} a rollout."
    return command


for _action in ACTIONS:
    rollout_app.command(_action)(_act(_action))


@rollout_app.command("status")
def rollout_status(
    rollout: RolloutArg,
    devices: Annotated[bool, typer.Option("--devices", help="List every device too.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """A rollout's status with device counts per state and stage (and its devices)."""

    async def work(svc: FirmwareService) -> dict[str, Any]:
        result = rollout_out(await svc.summary(None, rollout)).model_dump(mode="json")
        if devices:
            rows = await svc.rollout_devices(None, rollout, None, limit=100_000, offset=0)
            result["device_states"] = [rollout_device_out(r).model_dump(mode="json") for r in rows]
        return result

    _print(_with_service(settings_for(data_dir), work))


def _print(value: dict[str, Any]) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))
