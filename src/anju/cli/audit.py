"""``anju audit …``: verify the tamper-evident audit log, print checkpoints, keys and proofs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from anju.audit import AuditLog
from anju.audit.encoding import time_text
from anju.audit.verify import VerifyReport
from anju.cli.common import DataDirOption, fail, run, settings_for
from anju.errors import IntegrityError
from anju.kit.crypto import SM2PublicKey
from anju.kit.merkle import ProofError
from anju.platform import open_platform

app = typer.Typer(
    help="审计日志 / Audit log: verify integrity, signed checkpoints, public key, proofs.",
    no_args_is_help=True,
)


@app.command("verify")
def verify_command(
    data_dir: DataDirOption = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="Verify checkpoints with this SM2 public key PEM (e.g. one published earlier) "
            "instead of the key in the keyring.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="List every problem found, not only the first.")
    ] = False,
) -> None:
    """Recompute every entry's hash, rebuild the Merkle tree and check all signed checkpoints.

    Exit 0 with a one-line summary when intact; exit 1 naming the first bad entry when an entry
    was altered, deleted, reordered or inserted, a stored node is wrong, or a checkpoint's
    signature or root does not verify.
    """
    settings = settings_for(data_dir)
    try:
        key = SM2PublicKey.from_pem(public_key.read_text()) if public_key else None
    except IntegrityError as exc:
        fail(f"--public-key: {exc.message}", code=2)

    async def go() -> VerifyReport:
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            return await AuditLog(platform).verify(session, key)

    report = run(go())
    if report.ok:
        typer.echo(report.summary())
        return
    if show_all:
        for problem in report.problems:
            typer.echo(f"  [{problem.kind}] {problem.message}", err=True)
    fail(report.summary(), code=1)


@app.command("checkpoint")
def checkpoint_command(data_dir: DataDirOption = None) -> None:
    """Print the latest signed checkpoint note (signing a new one first if entries are unsigned).

    The note is a C2SP signed note: body `<origin>\\n<size>\\n<base64 root>\\n`, a blank line,
    then `— <key name> <base64(key id ‖ SM2 signature)>`. See docs/audit.md to verify it with
    openssl.
    """
    settings = settings_for(data_dir)

    async def go() -> str:
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            return (await AuditLog(platform).checkpoint(session)).note

    typer.echo(run(go()), nl=False)


@app.command("public-key")
def public_key_command(data_dir: DataDirOption = None) -> None:
    """Print the SM2 public key (PEM) that verifies checkpoint signatures."""
    settings = settings_for(data_dir)

    async def go() -> str:
        async with open_platform(settings) as platform:
            return AuditLog(platform).public_key().to_pem()

    typer.echo(run(go()), nl=False)


@app.command("proof")
def proof_command(
    index: Annotated[int, typer.Option("--index", "-i", help="Leaf index of the entry.")],
    size: Annotated[
        int | None,
        typer.Option(
            "--size", "-n", help="Tree size to prove against. Default: latest signed checkpoint."
        ),
    ] = None,
    old_size: Annotated[
        int | None,
        typer.Option(
            "--consistency-from",
            help="Also print a consistency proof from this older tree size to --size.",
        ),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Print an inclusion proof of entry --index in the tree of --size entries as JSON.

    Fields are base64; check it with anju.kit.merkle.verify_inclusion (RFC 9162 §2.1.3.2, SM3).
    """
    settings = settings_for(data_dir)

    async def go() -> dict[str, object]:
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            log = AuditLog(platform)
            try:
                proof = await log.inclusion_proof(session, index, size)
                proof.verify()
                out: dict[str, object] = {"inclusion": proof.to_json()}
                if old_size is not None:
                    consistency = await log.consistency_proof(session, old_size, proof.size)
                    consistency.verify()
                    out["consistency"] = consistency.to_json()
            except (ProofError, LookupError) as exc:
                raise IntegrityError(f"审计树损坏 / audit tree damaged: {exc}") from exc
            return out

    typer.echo(json.dumps(run(go()), indent=2, ensure_ascii=False))


@app.command("tail")
def tail_command(
    count: Annotated[int, typer.Option("-n", "--count", min=1, help="How many entries.")] = 20,
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Print the newest entries, one JSON object per line, oldest of them first."""
    settings = settings_for(data_dir)

    async def go() -> list[str]:
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            rows = await AuditLog(platform).tail(session, count, org)
            return [
                json.dumps(
                    {
                        "index": r.leaf_index,
                        "time": time_text(r.recorded_at),
                        "org_id": r.org_id,
                        "actor": r.actor,
                        "action": r.action,
                        "target": r.target,
                        "outcome": r.outcome,
                        "details": json.loads(r.details),
                    },
                    ensure_ascii=False,
                )
                for r in reversed(rows)
            ]

    for line in run(go()):
        typer.echo(line)
