"""``anju gateway``: the MQTT side of the platform (Mosquitto files; see docs/gateway.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from anju.cli.common import DataDirOption, run, settings_for
from anju.gateway.mosquitto import TlsFiles, write_mosquitto_files
from anju.platform import open_platform

app = typer.Typer(help="MQTT 网关 / MQTT gateway and brokers.", no_args_is_help=True)


@app.callback()
def gateway() -> None:
    """MQTT 网关 / MQTT gateway and brokers (docs/gateway.md)."""


@app.command("mosquitto-config")
def mosquitto_config(
    out: Annotated[Path, typer.Option("--out", help="Directory for anju.conf, passwords, acl.")],
    data_dir: DataDirOption = None,
    bind: Annotated[str, typer.Option(help="Address of the plain listener.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the plain listener.")] = 1883,
    tls_cert: Annotated[Path | None, typer.Option(help="Server certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Server private key (PEM).")] = None,
    tls_ca: Annotated[Path | None, typer.Option(help="CA bundle for client certs.")] = None,
    tls_port: Annotated[int, typer.Option(min=1, max=65535)] = 8883,
    user: Annotated[
        str | None, typer.Option(help="User Mosquitto switches to when started as root.")
    ] = None,
) -> None:
    """生成 Mosquitto 配置 / Write Mosquitto's anju.conf, password file and ACL.

    Run again (and reload Mosquitto with SIGHUP) whenever devices are registered, suspended,
    resumed or revoked: only devices that may connect are in the password file.
    """
    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("--tls-cert and --tls-key go together")
    tls = TlsFiles(tls_cert, tls_key, tls_ca) if tls_cert and tls_key else None
    settings = settings_for(data_dir)

    async def write() -> None:
        async with open_platform(settings) as platform:
            files = await write_mosquitto_files(
                platform, out, bind=bind, port=port, tls=tls, tls_port=tls_port, user=user
            )
        typer.echo(f"已写入 / wrote {files.config}, {files.passwords}, {files.acl}")
        typer.echo(f"{files.users - 1} 台设备 + 网关 / devices + the gateway user")
        typer.echo(f"启动 / start: mosquitto -c {files.config}")

    run(write())
