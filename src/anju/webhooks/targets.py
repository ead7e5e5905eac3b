"""Where a webhook may be sent (SSRF guard): http(s) only, public addresses unless allowed.

The host is resolved at delivery time and *every* address must be allowed; the request then goes
to the checked address (Host header and TLS server name keep the URL's host), so a DNS answer
that changes between check and connect cannot redirect it. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from anju.errors import InvalidInput

MAX_URL_LENGTH = 2000
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(InvalidInput):
    code = "webhook_target_refused"


@dataclass(frozen=True)
class Target:
    """A checked webhook URL split into its parts."""

    url: str
    scheme: str
    host: str
    port: int
    path: str  # path and query

    def url_for(self, address: IPAddress) -> str:
        """The URL with the host replaced by one of its checked addresses."""
        literal = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{literal}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_target(url: str) -> Target:
    """Check the URL's form (``webhook_target_refused`` when it cannot be used)."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused("网址过长 / URL longer than 2000 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("网址无效 / not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("只允许 http 或 https / only http and https URLs are allowed")
    if not parts.hostname or parts.username or parts.password:
        raise TargetRefused("网址须有主机且不含口令 / the URL needs a host and no credentials")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default = 443 if parts.scheme == "https" else 80
    return Target(url, parts.scheme, parts.hostname, port or default, path)


def address_allowed(address: IPAddress, *, allow_private: bool) -> bool:
    """Public unicast addresses; private/loopback/link-local ones only when allowed."""
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address_allowed(address.ipv4_mapped, allow_private=allow_private)
    return allow_private or address.is_global


def check_literal(target: Target, *, allow_private: bool) -> None:
    """At registration: refuse a host that is a disallowed IP literal or ``localhost``."""
    if target.host.lower() in ("localhost", "localhost.") and not allow_private:
        raise TargetRefused("不允许本机地址 / loopback targets are not allowed")
    try:
        address = ipaddress.ip_address(target.host)
    except ValueError:
        return
    if not address_allowed(address, allow_private=allow_private):
        raise TargetRefused("不允许内网或保留地址 / private or reserved addresses are not allowed")


async def resolve(target: Target, *, allow_private: bool) -> IPAddress:
    """The address to connect to: every address of the host must be allowed."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except OSError:
        raise TargetRefused("无法解析主机 / the host does not resolve") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses or not all(address_allowed(a, allow_private=allow_private) for a in addresses):
        raise TargetRefused("主机解析到不允许的地址 / the host resolves to a disallowed address")
    return addresses[0]
