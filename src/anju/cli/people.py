"""``anju people …``: real-name registration from the console.

PI never goes on the command line (shell history, process lists): ``register`` reads the
person's data as JSON from a file or stdin. Output is masked. ``fake-ctid`` runs the fake
CTID-style identity service on loopback for the demo and writes the client configuration
``register --ctid-config`` reads. ``link`` issues the person's subject access link.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from anju.cli.common import DataDirOption, fail, run, settings_for
from anju.people.application import Application
from anju.people.consent_gate import identity_verification_consent
from anju.people.registration import Registrar, Registration
from anju.people.rights import IssuedLink, SubjectRights
from anju.people.service import Actor, PeopleService, view_of
from anju.people.verification.base import Evidence, NetworkCheck, StaffCheck
from anju.people.verification.config import load_ctid_config
from anju.people.verification.ctid import CtidProvider
from anju.people.verification.fake_ctid import FakeCtidService
from anju.platform import open_platform

app = typer.Typer(help="实名登记 / Real-name registration of people.", no_args_is_help=True)

OperatorOption = Annotated[
    str, typer.Option("--operator", help="Staff member recorded as having checked the person.")
]
OrgOption = Annotated[str | None, typer.Option("--org-id", help="Organisation (tenant) id.")]


def _read_json(source: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        fail(f"cannot read JSON from {source}: {type(exc).__name__}", code=2)
    if not isinstance(data, dict):
        fail("the registration JSON must be an object", code=2)
    return data


@app.command("register")
def register_command(
    source: Annotated[str, typer.Argument(help="JSON file with the person's data, or - (stdin).")],
    operator: OperatorOption,
    method: Annotated[str, typer.Option("--method", help="staff_offline or ctid.")] = (
        "staff_offline"
    ),
    original_checked: Annotated[
        bool, typer.Option("--original-checked", help="The original document was checked.")
    ] = False,
    ctid_config: Annotated[
        Path | None, typer.Option("--ctid-config", help="CTID client configuration (JSON).")
    ] = None,
    consent_receipt: Annotated[
        str | None, typer.Option("--consent-receipt", help="The person's consent receipt id.")
    ] = None,
    subject_id: Annotated[
        str | None,
        typer.Option(
            "--subject-id",
            help="The subject id the person's consent to the privacy notice is recorded under.",
        ),
    ] = None,
    org_id: OrgOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Register and verify a person; prints the outcome (ids only). Exit 1 when rejected.

    As over HTTP, the person must first have agreed to the organisation's privacy notice in
    force, recorded under ``--subject-id`` (N3: consent before any data is verified)."""
    data = _read_json(source)
    fields = ("kind", "document_type", "document_number", "name", "phone", "email", "address")
    application = Application(
        **{k: data.get(k) for k in fields if k != "kind"},  # type: ignore[arg-type]
        kind=str(data.get("kind", "individual")),
        legal_representative=data.get("legal_representative"),
    )
    settings = settings_for(data_dir)

    async def _register() -> Registration:
        async with open_platform(settings) as platform:
            evidence: Evidence
            if method == "ctid":
                config = ctid_config or settings.ctid_config
                if config is None:
                    fail("--method ctid needs --ctid-config (or ANJU_CTID_CONFIG)", code=2)
                provider = CtidProvider(load_ctid_config(config), platform.clock)
                evidence = NetworkCheck(provider)
            elif method == "staff_offline":
                evidence = StaffCheck(original_document_checked=original_checked)
            else:
                fail("--method is staff_offline or ctid", code=2)
            async with platform.db.transaction() as session:
                registrar = Registrar(
                    platform, session, consent_check=identity_verification_consent(platform)
                )
                return await registrar.register(
                    Actor(f"cli:{operator}", org_id),
                    application,
                    evidence,
                    consent_receipt_id=consent_receipt,
                    subject_id=subject_id,
                )

    result = run(_register())
    typer.echo(json.dumps(result.as_dict(), ensure_ascii=False))
    if result.outcome != "registered":
        raise typer.Exit(1)


@app.command("show")
def show_command(
    person_id: Annotated[str, typer.Argument(help="The person's id.")],
    org_id: OrgOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """A person, masked (ids, document type, masked values)."""
    settings = settings_for(data_dir)

    async def _show() -> dict[str, Any]:
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            return view_of(
                await PeopleService(platform, session).person(person_id, org_id)
            ).as_dict()

    typer.echo(json.dumps(run(_show()), ensure_ascii=False, indent=2))


@app.command("link")
def link_command(
    person_id: Annotated[str, typer.Argument(help="The person's id.")],
    operator: OperatorOption,
    minutes: Annotated[int, typer.Option("--minutes", help="Lifetime, 1..1440.")] = 30,
    org_id: OrgOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """A subject access link for the person (shown once; hand it to them in person)."""
    settings = settings_for(data_dir)

    async def _link() -> IssuedLink:
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            return await SubjectRights(platform, session).issue_link(
                Actor(f"cli:{operator}", org_id), person_id, timedelta(minutes=minutes)
            )

    issued = run(_link())
    typer.echo(json.dumps({"token": issued.token, "expires_at": issued.expires_at.isoformat()}))


@app.command("fake-ctid")
def fake_ctid_command(
    identities: Annotated[
        Path, typer.Argument(help="JSON list of {document_type, document_number, name}.")
    ],
    config_out: Annotated[Path, typer.Option("--config-out", help="Client config to write.")],
    port: Annotated[int, typer.Option("--port")] = 0,
) -> None:
    """Run the FAKE CTID-style identity service on loopback (demo/tests only) until Ctrl-C."""
    try:
        people = json.loads(identities.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"cannot read {identities}: {type(exc).__name__}", code=2)
    service = FakeCtidService()
    for entry in people:
        service.add_identity(entry["document_type"], entry["document_number"], entry["name"])
    url = service.start(port=port)
    config_out.write_text(
        json.dumps(
            {
                "base_url": url,
                "app_id": service.app_id,
                "app_secret_hex": service.app_secret.hex(),
                "service_public_key_pem": service.key.public_key.to_pem(),
            }
        ),
        encoding="utf-8",
    )
    config_out.chmod(0o600)
    typer.echo(f"fake CTID service (NOT the real CTID platform) on {url}; config: {config_out}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        service.stop()
