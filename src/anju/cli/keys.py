"""``anju keys …``: master key status and rotation (rewrap, retire). See docs/keys.md."""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from anju.audit import AuditLog
from anju.cli.common import DataDirOption, run, settings_for
from anju.errors import Conflict
from anju.kit.keyring import FileKeyProvider, MasterKeyInfo
from anju.platform import open_platform
from anju.privacy import repository as repo
from anju.privacy.vault import PIVault

app = typer.Typer(
    help="主密钥：状态与轮换 / Master keys: status and rotation.", no_args_is_help=True
)

CLI_ACTOR = "cli"
REWRAP_BATCH = 500
REWRAP_BATCHES_PER_TRANSACTION = 20


@dataclass
class _Status:
    provider: str
    key_file: Path | None
    file_mode: int | None
    dir_mode: int | None
    masters: list[MasterKeyInfo]
    current: int
    minimum: int
    keys_by_version: dict[int | None, int] = field(default_factory=dict)
    key_check: str = "not checked"


@app.command("status")
def status_command(data_dir: DataDirOption = None) -> None:
    """Show the key provider, master key versions and how many data keys each one wraps."""
    settings = settings_for(data_dir)

    async def go() -> _Status:
        async with open_platform(settings) as platform:
            keys = platform.keys
            is_file = isinstance(keys, FileKeyProvider)
            path = keys.path if isinstance(keys, FileKeyProvider) else None
            status = _Status(
                provider="file" if is_file else type(keys).__name__,
                key_file=path,
                file_mode=stat.S_IMODE(path.stat().st_mode) if path else None,
                dir_mode=stat.S_IMODE(path.parent.stat().st_mode) if path else None,
                masters=keys.master_keys(),
                current=keys.current_version(),
                minimum=keys.min_decrypt_version(),
            )
            async with platform.db.transaction() as session:
                status.keys_by_version = await repo.count_keys_by_master_version(session)
                await PIVault(platform).verify_master_keys(session, store_check=False)
                status.key_check = "OK"
            return status

    status = run(go())
    typer.echo(f"provider / 密钥提供者: {status.provider}")
    if status.key_file is not None and status.file_mode is not None:
        loose = status.file_mode & 0o077
        verdict = "OK" if not loose else f"TOO OPEN — run `chmod 600 {status.key_file}`"
        typer.echo(
            f"key file / 密钥文件: {status.key_file} (mode {status.file_mode:04o}: {verdict})"
        )
    typer.echo(f"current version / 当前版本: v{status.current}")
    typer.echo(f"min decryption version / 最低解密版本: v{status.minimum}")
    typer.echo(f"key check / 密钥校验: {status.key_check}")
    typer.echo("")
    typer.echo(f"{'version':<9}{'state':<14}{'data keys':>10}  created")
    for info in status.masters:
        count = status.keys_by_version.get(info.version, 0)
        typer.echo(f"v{info.version:<8}{info.state:<14}{count:>10}  {info.created}")
    shredded = status.keys_by_version.get(None, 0)
    typer.echo(f"shredded subject keys / 已销毁的主体密钥: {shredded}")


RewrapOption = Annotated[
    bool, typer.Option("--rewrap", help="Rewrap every subject data key to the new version.")
]
RetireOption = Annotated[
    bool,
    typer.Option(
        "--retire-old",
        help="Raise the minimum decryption version to the new one (only when no data key "
        "still uses an older version; combine with --rewrap).",
    ),
]


@app.command("rotate")
def rotate_command(
    data_dir: DataDirOption = None, rewrap: RewrapOption = False, retire_old: RetireOption = False
) -> None:
    """Create a new master key version; optionally rewrap data keys and retire old versions."""
    settings = settings_for(data_dir)

    async def go() -> list[str]:
        lines: list[str] = []
        async with open_platform(settings) as platform:
            keys = platform.keys
            vault = PIVault(platform)
            audit = AuditLog(platform)
            async with platform.db.transaction() as session:
                # Never rotate a keyring that does not belong to this database.
                await vault.verify_master_keys(session)
                if retire_old and not rewrap:
                    live = await repo.count_live_keys_below(session, keys.current_version() + 1)
                    if live:
                        raise Conflict(
                            f"{live} 个数据密钥仍使用旧主密钥，请加 --rewrap / {live} data keys "
                            "would still use an older master key: add --rewrap"
                        )
            old = keys.current_version()
            new = keys.rotate()
            lines.append(f"master key rotated / 主密钥已轮换: v{old} → v{new}")
            async with platform.db.transaction() as session:
                await vault.verify_master_keys(session)  # stores the new version's key check
                await audit.record(
                    session,
                    action="keys.master.rotated",
                    actor=CLI_ACTOR,
                    details={"from_version": old, "to_version": new},
                )
            if rewrap:
                total = 0
                while True:
                    async with platform.db.transaction() as session:
                        result = await vault.rewrap_all(
                            session,
                            batch_size=REWRAP_BATCH,
                            max_batches=REWRAP_BATCHES_PER_TRANSACTION,
                        )
                        total += result.rewrapped
                        if result.complete:
                            await audit.record(
                                session,
                                action="keys.data_keys.rewrapped",
                                actor=CLI_ACTOR,
                                details={"to_version": new, "rewrapped": total},
                            )
                    if result.complete:
                        break
                lines.append(f"data keys rewrapped / 已重新封装的数据密钥: {total}")
            if retire_old:
                async with platform.db.transaction() as session:
                    live = await repo.count_live_keys_below(session, new)
                    if live:
                        raise Conflict(
                            f"{live} 个数据密钥仍使用旧主密钥 / {live} data keys still use an "
                            "older master key; not retiring"
                        )
                    previous_min = keys.min_decrypt_version()
                    keys.set_min_decrypt_version(new)
                    await audit.record(
                        session,
                        action="keys.master.retired",
                        actor=CLI_ACTOR,
                        details={"from_min_version": previous_min, "min_version": new},
                    )
                lines.append(f"minimum decryption version / 最低解密版本: v{new}")
        return lines

    for line in run(go()):
        typer.echo(line)
