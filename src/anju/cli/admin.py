"""``anju admin …``: bootstrap the first security administrator, list accounts."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from anju.accounts.service import ORG_KINDS, AccountService, run_boundary
from anju.cli.common import DataDirOption, fail, run, settings_for
from anju.platform import open_platform

app = typer.Typer(
    help="账号管理：创建首个安全管理员、列出账号 / Accounts: create the first security "
    "administrator, list accounts.",
    no_args_is_help=True,
)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if not password:
            fail("no password on standard input / 标准输入中没有密码")
        return password
    return str(
        typer.prompt(
            "密码 / Password",
            hide_input=True,
            confirmation_prompt="再次输入密码 / Repeat the password",
        )
    )


@app.command("create")
def create(
    login: Annotated[str, typer.Option("--login", help="Login name (unique platform-wide).")],
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            help="Organisation name (created if missing); omit for a platform-level admin.",
        ),
    ] = None,
    org_kind: Annotated[
        str,
        typer.Option("--org-kind", help=f"Kind of a new organisation: {', '.join(ORG_KINDS)}."),
    ] = "other",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Create a security administrator (first account of a platform or organisation)."""
    settings = settings_for(data_dir)
    password = _read_password(password_stdin)

    async def go() -> tuple[str, str | None, str]:
        async with open_platform(settings) as platform:

            async def work(service: AccountService) -> tuple[str, str | None, str]:
                account, uri = await service.bootstrap_security_admin(
                    login=login, password=password, org_name=org, org_kind=org_kind
                )
                return account.id, account.org_id, uri

            return await run_boundary(platform, work)

    account_id, org_id, uri = run(go())
    typer.echo(f"已创建安全管理员 / created security administrator {login} ({account_id})")
    typer.echo(f"机构 / organisation: {org or '(platform level)'} {org_id or ''}".rstrip())
    typer.echo(
        "用身份验证器应用扫描下列地址设置第二因素（只显示一次）；登录后以第一个验证码调用 "
        "POST /api/v1/me/totp/confirm 完成确认。\n"
        "Add this to an authenticator app (shown once), then sign in and confirm it with the "
        "first code at POST /api/v1/me/totp/confirm:"
    )
    typer.echo(uri)


@app.command("list")
def list_accounts(data_dir: DataDirOption = None) -> None:
    """List every account with its organisation, roles and state (no secrets)."""
    settings = settings_for(data_dir)

    async def go() -> list[str]:
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            service = AccountService(platform, session)
            orgs = {o.id: o.name for o in await service.repo.organisations()}
            now = platform.clock.now()
            lines = []
            for account in await service.repo.all_accounts():
                roles = ",".join(await service.repo.roles_of(account.id)) or "-"
                locked = account.locked_until is not None and account.locked_until > now
                state = account.status + (" locked" if locked else "")
                lines.append(
                    "\t".join(
                        (
                            account.login,
                            orgs.get(account.org_id or "", "(platform)"),
                            roles,
                            state,
                            "2fa" if account.has_totp else "no-2fa",
                            account.id,
                        )
                    )
                )
            return lines

    lines = run(go())
    typer.echo("login\torganisation\troles\tstate\tsecond-factor\tid")
    for line in lines:
        typer.echo(line)
