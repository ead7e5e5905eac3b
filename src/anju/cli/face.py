"""``anju face …``: 1:1 face verification from the command line.

``anju face verify DOCUMENT_IMAGE LIVE_IMAGE`` prints JSON (decision, distance, threshold,
reasons) and exits 0 on a match, 1 on no match, 2 when an input is refused. The images are read
into memory and handed to the engine; nothing of them is written anywhere. The capture is
recorded in the platform's capture log (operator, device, result) like any other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from anju.biometrics.service import BiometricService, Operator
from anju.cli.common import DataDirOption, fail, run, settings_for
from anju.face.engine import Verification
from anju.face.image import DEFAULT_LIMITS
from anju.platform import open_platform

app = typer.Typer(help="人脸核验 / Face verification (1:1).", no_args_is_help=True)

EXIT_MATCH, EXIT_NO_MATCH, EXIT_REFUSED = 0, 1, 2


def _read_image(path: Path) -> bytes:
    """The file's bytes, refusing anything larger than the engine would take before reading it."""
    try:
        if path.stat().st_size > DEFAULT_LIMITS.max_bytes:
            # Reading it whole only to refuse it would be wasteful; the engine gives the reason.
            return bytes(DEFAULT_LIMITS.max_bytes + 1)
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", code=EXIT_REFUSED)


@app.command("verify")
def verify_command(
    document_image: Annotated[Path, typer.Argument(help="Photo from the identity document.")],
    live_image: Annotated[Path, typer.Argument(help="Live capture of the person.")],
    device: Annotated[
        str, typer.Option("--device", help="Capture device recorded in the capture log.")
    ] = "cli",
    operator: Annotated[
        str, typer.Option("--operator", help="Operator recorded in the capture log.")
    ] = "cli",
    data_dir: DataDirOption = None,
) -> None:
    """Compare an ID document photo with a live photo: exit 0 match, 1 no match, 2 refused."""
    document, live = _read_image(document_image), _read_image(live_image)
    settings = settings_for(data_dir)

    async def _verify() -> Verification:
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            return await BiometricService(platform, session).verify_document(
                document, live, Operator(actor=operator, device=device)
            )

    result = run(_verify())
    typer.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    if result.decision == "refused":
        raise typer.Exit(EXIT_REFUSED)
    raise typer.Exit(EXIT_MATCH if result.matched else EXIT_NO_MATCH)
