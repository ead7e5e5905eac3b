"""``anju devices …``: manufacture (factory), products, register, revoke, decommission, CA key.

The CLI is the platform operator's tool: it runs next to the keyring, acts as actor "cli" and
needs no claim code or second factor (the HTTP API requires both; docs/devices.md).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from anju.cli.common import DataDirOption, fail, run, settings_for
from anju.device.secure_element import SoftwareSecureElement
from anju.devices.ca import ca_public_key_pem
from anju.devices.lifecycle import DEVICE_TYPES, PLACE_KINDS, REASONS, Status, claim_code
from anju.devices.provisioning import FactoryRecord, ProvisioningService, device_topics
from anju.devices.service import DeviceService, Place, run_device_boundary
from anju.kit.crypto import random_bytes
from anju.platform import Platform, open_platform

app = typer.Typer(
    help="设备：出厂制造、产品、登记、吊销、报废、CA 公钥 / Devices: manufacture, products, "
    "register, revoke, decommission, CA public key.",
    no_args_is_help=True,
)
product_app = typer.Typer(help="设备产品与一型一密 / Device products and dynamic registration.")
app.add_typer(product_app, name="product")

FACTORY_FORMAT = "anju-factory/1"
MAX_BATCH = 1000
SE_PIN_BYTES = 16

DeviceOption = Annotated[str, typer.Option("--device", help="Device id (32 hex characters).")]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help=f"One of: {', '.join(REASONS)}.")
]


@dataclass(frozen=True)
class _Made:
    """One device made at the factory: its SE directory and PIN, and the SE's record."""

    se_dir: Path
    se_pin: str
    record: FactoryRecord


def _manufacture_secure_elements(se_root: Path, count: int) -> list[_Made]:
    """Personalise ``count`` software secure elements; each derives its root key inside."""
    made = []
    for _ in range(count):
        device_id = random_bytes(16).hex()
        pin = random_bytes(SE_PIN_BYTES).hex()
        se_dir = se_root / device_id
        _, factory = SoftwareSecureElement.manufacture(
            se_dir, device_id=device_id, pin=pin.encode("ascii")
        )
        record = FactoryRecord(
            device_id=factory.device_id,
            se_id=factory.se_id,
            public_key=factory.public_key,
            root_key=factory.root_key,
        )
        made.append(_Made(se_dir, pin, record))
    return made


def _se_root_beside(out: Path) -> Path:
    """Where the secure elements of factory file ``out`` go (created if missing)."""
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent / "se"


def _write_private_json(path: Path, content: dict[str, Any]) -> None:
    """Write JSON readable by the owner only; never overwrite an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(content, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


@app.command("manufacture")
def manufacture(
    product: Annotated[str, typer.Option("--product", help="Product key, e.g. lock-x1.")],
    count: Annotated[int, typer.Option("--count", help=f"How many devices (1–{MAX_BATCH}).")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Factory file to write (JSON, mode 0600); secure elements go to <dir>/se/.",
        ),
    ],
    device_type: Annotated[
        str | None,
        typer.Option("--type", help=f"Device type of a new product: {', '.join(DEVICE_TYPES)}."),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Factory step: make devices (one device, one key) and import them into the platform."""
    if not 1 <= count <= MAX_BATCH:
        fail(f"--count must be 1–{MAX_BATCH}")
    if out.exists():
        fail(f"{out} already exists; refusing to overwrite a factory file")
    settings = settings_for(data_dir)

    async def go() -> tuple[str, list[dict[str, Any]]]:
        async with open_platform(settings) as platform:
            return await manufacture_into(platform, product, count, out, device_type)

    kind, entries = run(go())
    se_root = out.resolve().parent / "se"
    typer.echo(
        f"已制造 / manufactured {len(entries)} × {kind} ({product}); status manufactured\n"
        f"出厂文件 / factory file: {out} (0600, no root keys)\n"
        f"安全芯片 / secure elements: {se_root}"
    )
    for entry in entries[:10]:
        typer.echo(f"  {entry['device_id']}  claim code {entry['claim_code']}")
    if len(entries) > 10:
        typer.echo(f"  … {len(entries) - 10} more in {out}")


async def manufacture_into(
    platform: Platform, product: str, count: int, out: Path, device_type: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The factory step: personalise ``count`` SEs beside ``out``, import them, write ``out``."""
    se_root = _se_root_beside(out)

    async def check(svc: ProvisioningService) -> None:
        await svc.product_for_manufacture(product, device_type)

    # Validate (and create a new product) before any secure element is personalised.
    await run_device_boundary(platform, check, ProvisioningService)
    made = _manufacture_secure_elements(se_root, count)
    try:
        kind, entries = await _import(platform, product, made)
    except BaseException:
        for item in made:  # their root keys exist nowhere else now: destroy them
            shutil.rmtree(item.se_dir, ignore_errors=True)
        raise
    _write_private_json(
        out, {"format": FACTORY_FORMAT, "product": product, "device_type": kind, "devices": entries}
    )
    return kind, entries


async def _import(
    platform: Platform, product: str, made: list[_Made]
) -> tuple[str, list[dict[str, Any]]]:
    ca_pem = ca_public_key_pem(platform.keys)

    async def work(svc: ProvisioningService) -> tuple[str, list[dict[str, Any]]]:
        devices = await svc.import_factory_records(product, [m.record for m in made])
        entries = [
            {
                "device_id": device.id,
                "se_id": device.se_id,
                "se_dir": str(item.se_dir),
                "se_pin": item.se_pin,
                "certificate": device.certificate.hex(),
                "ca_public_key_pem": ca_pem,
                "topics": device_topics(device.id),
                # For the label printer: a one-way function of the root key (docs/devices.md).
                "claim_code": claim_code(item.record.root_key),
            }
            for device, item in zip(devices, made, strict=True)
        ]
        return devices[0].device_type, entries

    return await run_device_boundary(platform, work, ProvisioningService)


@app.command("register")
def register(
    device: DeviceOption,
    org: Annotated[str, typer.Option("--org", help="Organisation id that will own the device.")],
    place_kind: Annotated[
        str | None, typer.Option("--place-kind", help=f"One of: {', '.join(PLACE_KINDS)}.")
    ] = None,
    place_ref: Annotated[
        str | None, typer.Option("--place-ref", help="Place reference (e.g. room 1203).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Register a manufactured device to an organisation (operator; no claim code needed)."""
    if (place_kind is None) != (place_ref is None):
        fail("--place-kind and --place-ref go together")
    settings = settings_for(data_dir)

    async def go() -> str:
        place = Place(place_kind, place_ref) if place_kind and place_ref else None
        async with open_platform(settings) as platform:

            async def work(svc: DeviceService) -> str:
                registered = await svc.register_device_as_operator(device, org, place)
                return registered.status

            return await run_device_boundary(platform, work, DeviceService)

    status = run(go())
    typer.echo(f"已登记 / registered {device} → organisation {org} ({status})")


def _lifecycle(
    device: str, target: Status, operation: str, reason: str | None, data_dir: Any
) -> None:
    settings = settings_for(data_dir)

    async def go() -> None:
        async with open_platform(settings) as platform:

            async def work(svc: DeviceService) -> None:
                await svc.operator_lifecycle(device, target, operation, reason, actor="cli")

            await run_device_boundary(platform, work, DeviceService)

    run(go())


@app.command("revoke")
def revoke(
    device: DeviceOption, reason: ReasonOption = None, data_dir: DataDirOption = None
) -> None:
    """Revoke a device (compromised): the gateway refuses its certificate from now on."""
    _lifecycle(device, Status.REVOKED, "revoked", reason, data_dir)
    typer.echo(f"已吊销 / revoked {device}")


@app.command("decommission")
def decommission(
    device: DeviceOption,
    reason: ReasonOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Decommission a device: unbind it and destroy its wrapped root key (irreversible)."""
    if not yes:
        typer.confirm(
            "报废会销毁设备根密钥，不可恢复。继续？/ This destroys the device's root key for good. "
            "Continue?",
            abort=True,
        )
    _lifecycle(device, Status.DECOMMISSIONED, "decommissioned", reason, data_dir)
    typer.echo(f"已报废，根密钥已销毁 / decommissioned {device}; root key destroyed")


@app.command("list")
def list_devices(
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """List devices (no keys): id, type, product, status, organisation, place, online."""
    settings = settings_for(data_dir)

    async def go() -> list[str]:
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            devices = await DeviceService(platform, session).repo.all_devices(org)
            return [
                "\t".join(
                    (
                        d.id,
                        d.device_type,
                        d.product_key,
                        d.status,
                        d.org_id or "-",
                        f"{d.place_kind}:{d.place_ref}" if d.place_kind else "-",
                        "online" if d.online else "offline",
                    )
                )
                for d in devices
            ]

    lines = run(go())
    typer.echo("device\ttype\tproduct\tstatus\torganisation\tplace\tonline")
    for line in lines:
        typer.echo(line)


@app.command("ca-key")
def ca_key(
    out: Annotated[Path | None, typer.Option("--out", help="Write the PEM to this file.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Print the device CA public key (PEM) that device makers build into their devices."""
    settings = settings_for(data_dir)

    async def go() -> str:
        async with open_platform(settings) as platform:
            return ca_public_key_pem(platform.keys)

    pem = run(go())
    if out is None:
        typer.echo(pem, nl=False)
    else:
        out.write_text(pem)
        typer.echo(f"CA 公钥已写入 / CA public key written to {out}")


# --- products ------------------------------------------------------------------------------
@product_app.command("create")
def product_create(
    product: Annotated[str, typer.Option("--product", help="Product key, e.g. lock-x1.")],
    device_type: Annotated[str, typer.Option("--type", help=f"One of: {', '.join(DEVICE_TYPES)}.")],
    name: Annotated[str, typer.Option("--name", help="Product name.")],
    dynamic: Annotated[
        bool,
        typer.Option(
            "--dynamic-registration", help="Enable 一型一密 and print the product secret once."
        ),
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Create a product (a device model)."""
    settings = settings_for(data_dir)

    async def go() -> bytes | None:
        async with open_platform(settings) as platform:

            async def work(svc: ProvisioningService) -> bytes | None:
                _, secret = await svc.create_product(
                    product, device_type, name, dynamic_registration=dynamic
                )
                return secret

            return await run_device_boundary(platform, work, ProvisioningService)

    secret = run(go())
    typer.echo(f"已创建产品 / created product {product} ({device_type})")
    if secret is not None:
        _show_secret(secret)


@product_app.command("dynamic")
def product_dynamic(
    product: Annotated[str, typer.Option("--product", help="Product key.")],
    enable: Annotated[bool, typer.Option("--enable/--disable", help="Turn 一型一密 on or off.")],
    new_secret: Annotated[
        bool, typer.Option("--new-secret", help="Replace the product secret (when enabling).")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Enable or disable dynamic registration (一型一密) of a product."""
    settings = settings_for(data_dir)

    async def go() -> bytes | None:
        async with open_platform(settings) as platform:

            async def work(svc: ProvisioningService) -> bytes | None:
                return await svc.set_dynamic_registration(product, enable, new_secret=new_secret)

            return await run_device_boundary(platform, work, ProvisioningService)

    secret = run(go())
    typer.echo(f"动态注册 / dynamic registration of {product}: {'on' if enable else 'off'}")
    if secret is not None:
        _show_secret(secret)


@product_app.command("list")
def product_list(data_dir: DataDirOption = None) -> None:
    """List products (no secrets)."""
    settings = settings_for(data_dir)

    async def go() -> list[str]:
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            products = await DeviceService(platform, session).repo.products()
            return [
                f"{p.product_key}\t{p.device_type}\t{'on' if p.dynamic_registration else 'off'}"
                f"\t{p.name}"
                for p in products
            ]

    lines = run(go())
    typer.echo("product\ttype\tdynamic-registration\tname")
    for line in lines:
        typer.echo(line)


def _show_secret(secret: bytes) -> None:
    typer.echo(
        "产品密钥（只显示一次，写入该型号全部设备的固件）/ product secret (shown once; "
        "goes into the firmware of every device of this product):"
    )
    typer.echo(secret.hex())
