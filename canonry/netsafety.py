"""Where a provider URL may point: the address rules, checked twice.

A connection's credential goes to its `base_url` and OAuth endpoints. A URL that points at cloud metadata
(169.254.169.254), a private network or an address spelled to look like something else would send it
there. The rules, as data:

- `ADDRESS_CLASSES` sorts every address into loopback (allowed: the sandboxes), public (allowed, https
  only), private (RFC 1918, CGNAT, IPv6 unique-local…: only with `allow_private_network: true` on the
  connection) and forbidden (link-local/cloud metadata, unspecified, multicast, reserved: never).
- A host must be spelled plainly: no user info (`https://good.com@169.254.169.254`), no decimal/octal/hex
  IPv4 (`2852039166`, `0251.0376.0251.0376`, `0xa9fea9fe`), no IPv4 hidden in IPv6 (`::ffff:169.254.169.254`),
  no non-ASCII host, nothing two URL parsers read differently.
- `check_url` runs at validate time and resolves host names (through an injectable resolver);
  `guard_session` runs at connect time: it checks the address each socket actually connected to, so a
  DNS answer that changes between `validate` and `sync` (rebinding) still cannot reach a refused address.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from canonry.errors import ConfigError

LOOPBACK, PUBLIC, PRIVATE, FORBIDDEN = "loopback", "public", "private", "forbidden"

# First match wins: the specific ranges come before the ranges that contain them.
ADDRESS_CLASSES: tuple[tuple[str, str, str], ...] = (
    ("127.0.0.0/8", LOOPBACK, "loopback"),
    ("::1/128", LOOPBACK, "loopback"),
    ("169.254.0.0/16", FORBIDDEN, "link-local (cloud metadata lives at 169.254.169.254)"),
    ("fe80::/10", FORBIDDEN, "IPv6 link-local"),
    ("fd00:ec2::/32", FORBIDDEN, "cloud metadata (IPv6)"),
    ("0.0.0.0/8", FORBIDDEN, "'this network' (0.0.0.0/8)"),
    ("::/128", FORBIDDEN, "the unspecified address"),
    ("224.0.0.0/4", FORBIDDEN, "multicast"),
    ("ff00::/8", FORBIDDEN, "IPv6 multicast"),
    ("240.0.0.0/4", FORBIDDEN, "reserved (240.0.0.0/4, broadcast)"),
    ("10.0.0.0/8", PRIVATE, "private network (RFC 1918)"),
    ("172.16.0.0/12", PRIVATE, "private network (RFC 1918)"),
    ("192.168.0.0/16", PRIVATE, "private network (RFC 1918)"),
    ("100.64.0.0/10", PRIVATE, "carrier-grade NAT (RFC 6598)"),
    ("fc00::/7", PRIVATE, "IPv6 unique-local (ULA)"),
    ("fec0::/10", PRIVATE, "IPv6 site-local"),
    ("192.0.0.0/24", PRIVATE, "IETF protocol assignments"),
    ("198.18.0.0/15", PRIVATE, "benchmarking network"),
    ("192.0.2.0/24", PRIVATE, "documentation network"),
    ("198.51.100.0/24", PRIVATE, "documentation network"),
    ("203.0.113.0/24", PRIVATE, "documentation network"),
    ("2001:db8::/32", PRIVATE, "IPv6 documentation network"),
)
_NETWORKS = tuple((ipaddress.ip_network(net), kind, label) for net, kind, label in ADDRESS_CLASSES)
# IPv6 ranges that carry an IPv4 address inside: judged by the IPv4 address they carry.
_EMBEDDING = (ipaddress.ip_network("::ffff:0:0/96"), ipaddress.ip_network("::/96"),
              ipaddress.ip_network("64:ff9b::/96"))
LOOPBACK_NAMES = ("localhost",)
_CANONICAL_IPV4 = re.compile(r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|\d+)$", re.IGNORECASE)
_UNSAFE_CHARACTERS = re.compile(r"[\\\s\x00-\x1f\x7f]")
RESOLVE_TIMEOUT_SECONDS = 3.0  # per name
RESOLVE_BUDGET_SECONDS = 4.0   # per process: a file of many slow names still validates in seconds
HOSTS_FILE_VARIABLE = "CANONRY_HOSTS_FILE"


@dataclass(frozen=True)
class UrlProblem:
    code: str
    message: str
    hint: str


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, -compatible or NAT64 IPv6 address carries (None: it carries none)."""
    if address in ipaddress.ip_network("::/127"):
        return None  # :: and ::1 are themselves
    if any(address in net for net in _EMBEDDING):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return None


def classify(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[str, str]:
    """(loopback | public | private | forbidden, a label saying why)."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            kind, label = classify(inner)
            return kind, f"{label}, carried in IPv6"
        if address.scope_id:
            address = ipaddress.IPv6Address(str(address).split("%")[0])
    for network, kind, label in _NETWORKS:
        if address.version == network.version and address in network:
            return kind, label
    return (PUBLIC, "public") if address.is_global else (PRIVATE, "not a public address")


def address_allowed(address: str, allow_private: bool, allow_loopback: bool = True) -> tuple[bool, str]:
    """May a socket connected to `address` carry a credential? (allowed, label)."""
    kind, label = classify(ipaddress.ip_address(address.split("%")[0]))
    allowed = {PUBLIC: True, LOOPBACK: allow_loopback, PRIVATE: allow_private}.get(kind, False)
    return allowed, label


# --- resolving names -------------------------------------------------------------------------------------------

Resolver = Callable[[str], list[str]]


class NotResolved(Exception):
    """The name did not resolve (or not in time): it is judged at connect time instead."""


def _hosts_file_table(path: str) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = line.split("#", 1)[0].split()
            for name in fields[1:]:
                table.setdefault(name.lower(), []).append(fields[0])
    return table


def system_resolver(host: str) -> list[str]:
    """The addresses a name resolves to. With CANONRY_HOSTS_FILE set, only that hosts-format file is read
    (offline validation; the tests use it so that no name is ever looked up on the internet)."""
    hosts_file = os.environ.get(HOSTS_FILE_VARIABLE)
    if hosts_file:
        addresses = _hosts_file_table(hosts_file).get(host.lower().rstrip("."))
        if not addresses:
            raise NotResolved(host)
        return addresses
    return _resolve_with_timeout(host)


_resolve_spent = [0.0]


@lru_cache(maxsize=256)
def _resolve_with_timeout(host: str) -> list[str]:
    remaining = min(RESOLVE_TIMEOUT_SECONDS, RESOLVE_BUDGET_SECONDS - _resolve_spent[0])
    if remaining <= 0:
        raise NotResolved(host)  # the budget is spent: judged at connect time
    answer: list = []

    def lookup() -> None:
        try:
            answer.extend({info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})
        except (OSError, UnicodeError):
            pass

    worker = threading.Thread(target=lookup, daemon=True)  # getaddrinfo cannot be cancelled: stop waiting
    started = time.monotonic()
    worker.start()
    worker.join(remaining)
    _resolve_spent[0] += time.monotonic() - started
    if not answer:
        raise NotResolved(host)
    return list(answer)


# --- validate time: the URL as written -------------------------------------------------------------------------

def _host_spelling(host: str) -> UrlProblem | None:
    """A host written so that it reads as something else."""
    if not host.isascii():
        return UrlProblem("url_host_obfuscated", "the host has non-ASCII characters (they may normalise to "
                          "another host, e.g. full-width digits to an IP address)",
                          "write the host in ASCII (punycode xn--… for an international name)")
    bare = host.rstrip(".")
    last = bare.rsplit(".", 1)[-1]
    if ":" not in host and _NUMERIC_LABEL.match(last) and not _CANONICAL_IPV4.match(host):
        try:
            meaning = socket.inet_ntoa(socket.inet_aton(bare))
        except OSError:
            meaning = "no valid address"
        return UrlProblem("url_host_obfuscated", f"the host is an IPv4 address in an unusual spelling "
                          f"(it means {meaning})", "write an IP address in plain dotted-decimal form, or use "
                          "the provider's host name")
    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host.split("%")[0])
        except ValueError:
            return UrlProblem("base_url_invalid", "the host is not a valid IPv6 address", "check the URL")
        inner = embedded_ipv4(address)
        if inner is not None:
            return UrlProblem("url_host_obfuscated", f"the host is an IPv6 address carrying the IPv4 address "
                              f"{inner} ({classify(inner)[1]})", "write the IPv4 address itself")
        if "%" in host:
            return UrlProblem("url_forbidden_address", "the host carries an IPv6 zone (link-local scope)",
                              "use the provider's public host name")
    return None


_NEVER_HINT = "use the provider's public https host (or a sandbox on 127.0.0.1)"
_OPT_IN_HINT = ("if this connection really talks to a host on your private network, add "
                "`allow_private_network: true` to the connection")


def _address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool,
                     name: str | None = None) -> UrlProblem | None:
    """The problem with sending a credential to `address` (reached through the host `name`, if any)."""
    kind, label = classify(address)
    subject = f"{name} resolves to {address}" if name else f"the host is {address}"
    if kind == FORBIDDEN:
        return UrlProblem("url_forbidden_address", f"{subject}: {label}; credentials are never sent there",
                          _NEVER_HINT)
    if kind == PRIVATE and not allow_private:
        return UrlProblem("url_resolves_private" if name else "url_private_network", f"{subject}: {label}",
                          _OPT_IN_HINT)
    return None


def _parsers_disagree(url: str, host: str) -> bool:
    from urllib3.util import parse_url

    try:
        other = (parse_url(url).host or "").strip("[]").lower()
    except ValueError:
        return True
    return other != host


def check_url(url: str, *, allow_private: bool = False, resolver: Resolver | None = None,
              loopback_http: bool = True) -> list[UrlProblem]:
    """Every reason this URL may not carry a credential (an empty list: it may).

    Host names are resolved (`resolver`, default the system's); a name that does not resolve is left to
    the connect-time check. Plain http is accepted only for a loopback host."""
    if _UNSAFE_CHARACTERS.search(url):
        return [UrlProblem("url_ambiguous", "the URL contains a backslash, a space or a control character "
                           "(URL parsers disagree on what host such a URL names)", "remove it")]
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 — raises on a port that is not a number
    except ValueError:
        return [UrlProblem("base_url_invalid", "not a valid URL", "write it like https://api.example.com")]
    if parts.scheme not in ("http", "https") or not host:
        return [UrlProblem("base_url_invalid", "not an absolute http(s) URL",
                           "write it like https://api.example.com")]
    if "@" in parts.netloc:
        return [UrlProblem("url_userinfo", "the URL has user info before '@' (the host is what follows it; "
                           "credentials never go in a URL)", "remove everything between :// and @")]
    spelling = _host_spelling(host)
    if spelling is not None:
        return [spelling]
    if _parsers_disagree(url, host):
        return [UrlProblem("url_ambiguous", "URL parsers disagree on the host of this URL", "simplify the URL")]
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        loopback = classify(literal)[0] == LOOPBACK
        found = [_address_problem(literal, allow_private)]
    else:
        loopback = host in LOOPBACK_NAMES or host.endswith(".localhost")
        try:
            addresses = [] if loopback else (resolver or system_resolver)(host)
        except (NotResolved, OSError):
            addresses = []  # judged at connect time
        found = [_address_problem(ipaddress.ip_address(a.split("%")[0]), allow_private, host) for a in addresses]
    problems = []
    if parts.scheme != "https" and not (loopback and loopback_http):
        problems.append(UrlProblem("base_url_not_https", "the URL is not https",
                                   "use https (plain http is accepted only for loopback sandboxes)"))
    return problems + [p for p in found if p is not None][:1]


def display_url(url: str) -> str:
    """A URL safe to print: user info and query masked (either may hold a credential)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return f"…({len(url)} chars, masked)"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    shown = f"{parts.scheme}://{netloc}{parts.path}" + ("?***" if parts.query else "")
    return shown if len(shown) <= 200 else shown[:200] + "…"


# --- connect time: the address each socket reached --------------------------------------------------------------

class DestinationRefused(ConfigError):
    """A connection reached an address its policy refuses; nothing was sent. A config_error, and not an
    OSError, so that neither urllib3 nor requests retries or wraps it: it reaches the caller as itself."""

    def __init__(self, host: str, address: str, label: str) -> None:
        self.host, self.address, self.label = host, address, label
        super().__init__(f"refused to send a request to {host}: it connected to {address} ({label})",
                         hint="point the connection at the provider's public host; `allow_private_network: true` "
                              "on the connection permits a private network (never link-local/metadata)")


def _guarded_connection(base: type, allow_private: bool, allow_loopback: bool) -> type:
    def _new_conn(self):  # noqa: ANN202 — urllib3's signature
        sock = base._new_conn(self)
        if getattr(self, "_tunnel_host", None):
            return sock  # connected to a proxy the environment named: the proxy resolves the target
        peer = sock.getpeername()[0]
        allowed, label = address_allowed(peer, allow_private, allow_loopback)
        if not allowed:
            sock.close()
            raise DestinationRefused(self.host, peer, label)
        return sock

    return type(f"Guarded{base.__name__}", (base,), {"_new_conn": _new_conn})


def guard_session(session, *, allow_private: bool = False, allow_loopback: bool = True) -> None:
    """Mount adapters on a requests session whose sockets refuse non-public addresses (loopback allowed
    unless `allow_loopback=False`). The check runs on the connected socket, before TLS or any byte sent."""
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    pools = {
        "http": type("GuardedHTTPPool", (HTTPConnectionPool,),
                     {"ConnectionCls": _guarded_connection(HTTPConnection, allow_private, allow_loopback)}),
        "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,),
                      {"ConnectionCls": _guarded_connection(HTTPSConnection, allow_private, allow_loopback)}),
    }

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

    for prefix in ("http://", "https://"):
        old = session.adapters.get(prefix)
        adapter = GuardedAdapter(pool_connections=getattr(old, "_pool_connections", 10),
                                 pool_maxsize=getattr(old, "_pool_maxsize", 10))
        session.mount(prefix, adapter)
