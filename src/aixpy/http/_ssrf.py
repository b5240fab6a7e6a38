"""The SSRF guard's pure half: URL policies, host parsing and IP classification (no I/O).

Every outbound URL of aixpy is checked here twice: once as text (:func:`check_url` /
:func:`check_target`: scheme, host allowlist, port, literal IP), and once per new connection on each
address the host resolves to (:func:`check_ip`, called by the guarded transport, which then connects to
that very address). The text check is strict on purpose: encodings that parsers disagree on are
refused rather than decoded, so the guard and the socket layer can never read one URL two ways:

- numeric hosts other than canonical dotted decimal (``2130706433``, ``0177.0.0.1``, ``0x7f.1``,
  ``127.1``, ``127.000.000.001``) are refused, naming the address they decode to;
- userinfo (``https://good.com@evil``), backslashes, control characters, percent-encoded hosts and
  IPv6 zone ids are refused;
- hosts are lower-cased, IDNA/UTS-46 normalised (``ｌｏｃａｌｈｏｓｔ`` is ``localhost``) and one
  trailing dot is dropped before being compared with the allowlist.

Cloud metadata addresses and the NAT64 local-use prefix ``64:ff9b:1::/48`` (RFC 8215, whose embedded
IPv4 address cannot be located without the network's prefix length) are refused under every policy,
whatever it allows.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import idna

from aixpy.errors import BlockedURLError, ConfigError, InvalidInputError, redact

__all__ = [
    "LOCAL_HOSTS",
    "IPClass",
    "ParsedTarget",
    "URLPolicy",
    "check_host",
    "check_ip",
    "check_target",
    "check_url",
    "classify_ip",
    "local_policy",
    "normalize_host",
    "public_policy",
    "safe_url",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Category = Literal[
    "public", "loopback", "private", "cgnat", "link-local", "metadata", "unspecified", "multicast",
    "broadcast", "reserved", "benchmark", "documentation", "tunnel",
]

#: Exact host names the ``local`` policy allows, before ``OLLAMA_ALLOWED_HOSTS`` and extras.
LOCAL_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1", "ollama", "ollama-service")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_URL_LENGTH = 8192

# Cloud metadata / credential endpoints: AWS IMDS (v4 and v6), ECS and EKS pod-identity agents,
# GCP/Azure/Oracle/DigitalOcean (169.254.169.254), Alibaba Cloud. Always refused.
_METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "169.254.170.23", "fd00:ec2::254", "fd00:ec2::23",
              "100.100.100.200", "192.0.0.192")
)
_METADATA_HOSTNAMES = frozenset({"metadata.google.internal", "metadata.goog", "instance-data.ec2.internal"})


def _nets(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# Checked in order; the first match wins.
_V4_TABLE: tuple[tuple[tuple[IPNetwork, ...], Category], ...] = (
    (_nets("0.0.0.0/8"), "unspecified"),
    (_nets("127.0.0.0/8"), "loopback"),
    (_nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"), "private"),
    (_nets("100.64.0.0/10"), "cgnat"),
    (_nets("169.254.0.0/16"), "link-local"),
    (_nets("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"), "documentation"),
    (_nets("198.18.0.0/15"), "benchmark"),
    (_nets("224.0.0.0/4"), "multicast"),
    (_nets("255.255.255.255/32"), "broadcast"),
    (_nets("192.0.0.0/24", "192.88.99.0/24", "240.0.0.0/4"), "reserved"),
)
_V6_TABLE: tuple[tuple[tuple[IPNetwork, ...], Category], ...] = (
    (_nets("::/128"), "unspecified"),
    (_nets("::1/128"), "loopback"),
    (_nets("fc00::/7", "fec0::/10"), "private"),
    (_nets("fe80::/10"), "link-local"),
    (_nets("ff00::/8"), "multicast"),
    (_nets("2001:db8::/32", "3fff::/20"), "documentation"),
    (_nets("2001:2::/48"), "benchmark"),
    (_nets("2001::/32"), "tunnel"),  # Teredo
    (_nets("::/96", "100::/64", "2001:10::/28", "2001:20::/28"), "reserved"),
)
_V6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# RFC 8215 local-use NAT64 prefix: the operator picks the RFC 6052 prefix length (/48 to /96), so the
# position of the IPv4 address inside cannot be known from the address alone. Refused outright.
_NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPAT = ipaddress.ip_network("::/96")

_HOST_CHARS = re.compile(r"^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$")
_ENDS_IN_NUMBER = re.compile(r"(?:^|\.)(?:[0-9]+|0x[0-9a-f]*)$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_FORBIDDEN_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


# --------------------------------------------------------------------------- IP classification


@dataclass(frozen=True, slots=True)
class IPClass:
    """What an address is. ``via`` names an embedding (``ipv4-mapped``, ``6to4``, ``nat64``,
    ``teredo``, ``ipv4-compatible``, ``nat64-local-use``) and ``embedded`` the IPv4 address found inside
    it (``None`` for ``nat64-local-use``, whose embedding cannot be decoded)."""

    address: IPAddress
    category: Category
    via: str | None = None
    embedded: ipaddress.IPv4Address | None = None

    def describe(self) -> str:
        if self.via == "nat64-local-use":
            return (f"nat64-local-use address {self.address}: the NAT64 local-use prefix {_NAT64_LOCAL_USE}"
                    " (RFC 8215) is always blocked, since where it embeds an IPv4 address depends on a"
                    " network-specific prefix length (RFC 6052) that the address does not tell")
        if self.via and self.embedded is not None:
            return f"{self.category} address {self.embedded} embedded in {self.via} address {self.address}"
        return f"{self.category} address {self.address}"


def _lookup(ip: IPAddress, table: tuple[tuple[tuple[IPNetwork, ...], Category], ...]) -> Category | None:
    for nets, category in table:
        if any(ip in n for n in nets):
            return category
    return None


def _classify_v4(ip: ipaddress.IPv4Address) -> Category:
    if ip in _METADATA_ADDRESSES:
        return "metadata"
    return _lookup(ip, _V4_TABLE) or ("public" if ip.is_global else "reserved")


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    if ip.ipv4_mapped is not None:
        return "ipv4-mapped", ip.ipv4_mapped
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip.teredo is not None:
        return "teredo", ip.teredo[1]
    if ip in _NAT64:
        return "nat64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _IPV4_COMPAT and int(ip) > 1:
        return "ipv4-compatible", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def classify_ip(address: IPAddress | str) -> IPClass:
    """Classify an address (IPv4 or IPv6, with embedded IPv4 forms decoded)."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv4Address):
        return IPClass(ip, _classify_v4(ip))
    if ip.scope_id:
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    if ip in _METADATA_ADDRESSES:
        return IPClass(ip, "metadata")
    if ip in _NAT64_LOCAL_USE:
        return IPClass(ip, "reserved", "nat64-local-use")
    embedded = _embedded_v4(ip)
    if embedded is not None:
        via, v4 = embedded
        inner = _classify_v4(v4)
        if via == "ipv4-mapped":
            return IPClass(ip, inner, via, v4)
        if via in ("teredo", "ipv4-compatible"):
            # Tunnels and deprecated forms are never a legitimate API endpoint.
            return IPClass(ip, "metadata" if inner == "metadata" else "tunnel" if via == "teredo" else "reserved",
                           via, v4)
        return IPClass(ip, inner, via, v4)  # 6to4 / NAT64: as public as the address inside
    category = _lookup(ip, _V6_TABLE)
    if category is None:
        category = "public" if ip in _V6_GLOBAL_UNICAST and ip.is_global else "reserved"
    return IPClass(ip, category)


# --------------------------------------------------------------------------- policy


def _as_network(value: str | IPNetwork) -> IPNetwork:
    try:
        return ipaddress.ip_network(value, strict=False) if isinstance(value, str) else value
    except ValueError as e:
        raise InvalidInputError(f"invalid network {value!r} in URL policy: {e}") from None


@dataclass(frozen=True, slots=True)
class URLPolicy:
    """Which URLs and addresses outbound requests may reach.

    Attributes:
        name: "public", "local" or any name of yours; appears in error messages.
        schemes: allowed URL schemes.
        allowed_hosts: exact host names (or IP literals) allowed; ``None`` allows any host whose every
            address is allowed by the address rules below.
        allow_private: allow RFC 1918 / unique-local (fc00::/7) and CGNAT (100.64/10) addresses.
        allow_loopback: allow 127/8 and ::1.
        allowed_ports: if set, the only ports allowed.
        allowed_networks: addresses in these networks are allowed whatever their class (metadata
            addresses excepted), e.g. ``("10.1.2.0/24",)`` for one vLLM box without allowing all of 10/8.
    """

    name: str = "public"
    schemes: Collection[str] = frozenset({"https"})
    allowed_hosts: Collection[str] | None = None
    allow_private: bool = False
    allow_loopback: bool = False
    allowed_ports: Collection[int] | None = None
    allowed_networks: Collection[str | IPNetwork] = field(default=())

    def __post_init__(self) -> None:
        schemes = frozenset(s.lower() for s in self.schemes)
        if not schemes or not schemes <= {"http", "https"}:
            raise InvalidInputError(f"URL policy {self.name!r}: schemes must be a subset of http/https")
        object.__setattr__(self, "schemes", schemes)
        if self.allowed_hosts is not None:
            object.__setattr__(self, "allowed_hosts", frozenset(_policy_host(h, self.name) for h in self.allowed_hosts))
        if self.allowed_ports is not None:
            ports = frozenset(int(p) for p in self.allowed_ports)
            if any(not 0 < p < 65536 for p in ports):
                raise InvalidInputError(f"URL policy {self.name!r}: ports must be 1-65535")
            object.__setattr__(self, "allowed_ports", ports)
        object.__setattr__(self, "allowed_networks", tuple(_as_network(n) for n in self.allowed_networks))

    def with_hosts(self, *hosts: str) -> URLPolicy:
        """A copy that also allows ``hosts`` (an explicitly configured endpoint, say)."""
        if self.allowed_hosts is None:
            return self
        return replace(self, allowed_hosts=frozenset(self.allowed_hosts) | {_policy_host(h, self.name) for h in hosts})

    def allows_network(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self.allowed_networks)  # type: ignore[union-attr]


def _policy_host(host: str, policy_name: str) -> str:
    try:
        return normalize_host(host)[0]
    except BlockedURLError as e:
        raise InvalidInputError(f"URL policy {policy_name!r}: invalid allowed host: {e}") from None


def public_policy(
    *hosts: str,
    extra_hosts: Iterable[str] = (),
    allowed_ports: Collection[int] | None = None,
    name: str = "public",
) -> URLPolicy:
    """Policy for cloud APIs: https only, public addresses only, and only ``hosts`` + ``extra_hosts``.

    Pass the provider's official host(s) and, as ``extra_hosts``, the host of an endpoint explicitly
    configured by the operator (never one taken from request data). With no host at all, any host
    whose addresses are all public is allowed.
    """
    all_hosts = [*hosts, *extra_hosts]
    return URLPolicy(name=name, schemes=frozenset({"https"}), allowed_hosts=frozenset(all_hosts) or None,
                     allowed_ports=allowed_ports)


def local_policy(
    *,
    extra_hosts: Iterable[str] = (),
    allow_private: bool = True,
    schemes: Collection[str] = ("http", "https"),
    allowed_ports: Collection[int] | None = None,
    allowed_networks: Collection[str | IPNetwork] = (),
    environ: Mapping[str, str] | None = None,
    name: str = "local",
) -> URLPolicy:
    """Policy for local servers (Ollama, TEI, vLLM, llama.cpp): http(s) to an exact host allowlist.

    Hosts: :data:`LOCAL_HOSTS`, the comma-separated ``OLLAMA_ALLOWED_HOSTS`` (read now, from
    ``environ`` or ``os.environ``) and ``extra_hosts``. Loopback is allowed; private addresses too
    unless ``allow_private=False`` (``ollama`` is usually a container name on a private network).
    """
    env = os.environ if environ is None else environ
    from_env = [h.strip() for h in env.get("OLLAMA_ALLOWED_HOSTS", "").split(",") if h.strip()]
    for h in from_env:
        try:
            normalize_host(h)
        except BlockedURLError as e:
            raise ConfigError(f"invalid host {h!r}: {e}", path="OLLAMA_ALLOWED_HOSTS") from None
    return URLPolicy(
        name=name,
        schemes=frozenset(schemes),
        allowed_hosts=frozenset([*LOCAL_HOSTS, *from_env, *extra_hosts]),
        allow_private=allow_private,
        allow_loopback=True,
        allowed_ports=allowed_ports,
        allowed_networks=allowed_networks,
    )


# --------------------------------------------------------------------------- host parsing


def _parse_ipv4_part(part: str) -> int:
    if part.startswith(("0x", "0X")):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    return int(part, 10)


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Decode a host the way ``inet_aton`` (and WHATWG) would: 1-4 parts, decimal/octal/hex."""
    parts = host.split(".")
    if len(parts) > 4:
        return None
    try:
        nums = [_parse_ipv4_part(p) for p in parts]
    except ValueError:
        return None
    *head, last = nums
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(nums)):
        return None
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def normalize_host(host: str) -> tuple[str, IPAddress | None]:
    """Return ``(canonical host, ip or None)``; raise :class:`BlockedURLError` on any ambiguous form.

    Accepts a bare host, an IPv6 literal with or without brackets; lower-cases, IDNA-encodes, drops
    one trailing dot.
    """
    if not host:
        raise BlockedURLError("empty host")
    if host.startswith("[") or ":" in host:
        inner = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if "%" in inner:
            raise BlockedURLError(f"IPv6 zone identifiers are not allowed: {host!r}")
        try:
            ip6 = ipaddress.IPv6Address(inner)
        except ValueError:
            raise BlockedURLError(f"invalid IPv6 literal {host!r}") from None
        return ip6.compressed, ip6
    if "%" in host:
        raise BlockedURLError(f"percent-encoded host names are not allowed: {host!r}")
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as e:
            raise BlockedURLError(f"invalid international host name {host!r}: {e}") from None
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if len(host) > 253 or not _HOST_CHARS.match(host) or any(len(label) > 63 for label in host.split(".")):
        raise BlockedURLError(f"invalid host name {host!r}")
    if _ENDS_IN_NUMBER.search(host):
        ip4 = _legacy_ipv4(host)
        if ip4 is None:
            raise BlockedURLError(f"invalid numeric host {host!r}")
        if str(ip4) != host:
            raise BlockedURLError(f"non-canonical IPv4 address {host!r} (decodes to {ip4}); write it as {ip4}")
        return host, ip4
    return host, None


# --------------------------------------------------------------------------- checks


def _blocked(where: str, policy: URLPolicy, reason: str) -> BlockedURLError:
    return BlockedURLError(f"blocked {where} by URL policy {policy.name!r}: {reason}")


def check_ip(address: IPAddress | str, policy: URLPolicy, *, host: str | None = None) -> IPClass:
    """Raise :class:`BlockedURLError` unless ``policy`` allows connecting to ``address``."""
    cls = classify_ip(address)
    where = f"{host!r} -> {cls.address}" if host else str(cls.address)
    if cls.category == "metadata":
        raise _blocked(where, policy, f"cloud metadata address {cls.embedded or cls.address} is always blocked")
    if cls.via == "nat64-local-use":
        raise _blocked(where, policy, cls.describe())
    if cls.via in ("6to4", "nat64", "teredo", "ipv4-compatible") and cls.category != "public":
        raise _blocked(where, policy, cls.describe() + " is blocked")
    probe: IPAddress = cls.embedded if cls.via == "ipv4-mapped" and cls.embedded is not None else cls.address
    if policy.allows_network(probe) or policy.allows_network(cls.address):
        return cls
    if cls.category == "public":
        return cls
    if cls.category == "loopback" and policy.allow_loopback:
        return cls
    if cls.category in ("private", "cgnat") and policy.allow_private:
        return cls
    raise _blocked(where, policy, cls.describe() + " is not allowed")


@dataclass(frozen=True, slots=True)
class ParsedTarget:
    """A URL that passed :func:`check_url`, with its canonical parts."""

    scheme: str
    host: str
    port: int
    ip: IPAddress | None
    path: str = "/"
    query: str = ""

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = _DEFAULT_PORTS.get(self.scheme)
        return f"{self.scheme}://{host}" + ("" if self.port == default else f":{self.port}")

    @property
    def url(self) -> str:
        return self.origin + self.path + (f"?{self.query}" if self.query else "")

    def __str__(self) -> str:  # never prints the query string
        return self.origin + self.path


def check_target(scheme: str, host: str, port: int | None, policy: URLPolicy) -> ParsedTarget:
    """Check already-split URL parts (e.g. from an ``httpx.URL``); return the canonical target."""
    scheme = scheme.lower()
    if scheme not in policy.schemes:
        raise _blocked(f"scheme {scheme!r}", policy, f"allowed schemes are {sorted(policy.schemes)}")
    port = _DEFAULT_PORTS[scheme] if port is None else port
    name, ip = check_host(host, port, policy)
    return ParsedTarget(scheme, name, port, ip)


def check_host(host: str, port: int, policy: URLPolicy) -> tuple[str, IPAddress | None]:
    """Check a host and port (no scheme, no DNS); return ``(canonical host, literal ip or None)``."""
    name, ip = normalize_host(host)
    if policy.allowed_ports is not None and port not in policy.allowed_ports:
        raise _blocked(f"port {port}", policy, f"allowed ports are {sorted(policy.allowed_ports)}")
    if name in _METADATA_HOSTNAMES:
        raise _blocked(f"host {name!r}", policy, "cloud metadata host names are always blocked")
    if policy.allowed_hosts is not None and name not in policy.allowed_hosts:
        raise _blocked(f"host {name!r}", policy, "host is not in the allowed hosts")
    if ip is not None:
        check_ip(ip, policy)
    return name, ip


def _split_authority(authority: str) -> tuple[str, int | None]:
    if "@" in authority:
        raise BlockedURLError("credentials (userinfo) in URLs are not allowed")
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise BlockedURLError("unterminated IPv6 literal")
        host, rest = authority[: end + 1], authority[end + 1 :]
        if rest and not rest.startswith(":"):
            raise BlockedURLError("garbage after IPv6 literal")
        port_text = rest[1:] if rest else None
    elif authority.count(":") > 1:
        raise BlockedURLError("IPv6 literals must be in brackets")
    else:
        host, sep, port_text_raw = authority.partition(":")
        port_text = port_text_raw if sep else None
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not port_text.isascii() or len(port_text) > 5 or not 0 < int(port_text) < 65536:
        raise BlockedURLError(f"invalid port {port_text!r}")
    return host, int(port_text)


def check_url(url: str, policy: URLPolicy) -> ParsedTarget:
    """Parse ``url`` strictly and check it against ``policy`` (no DNS: addresses are checked again
    at connect time by the guarded transport). Raise :class:`BlockedURLError` with the reason."""
    if not isinstance(url, str):
        raise BlockedURLError(f"URL must be a string, not {type(url).__name__}")
    shown = safe_url(url)
    try:
        if len(url) > _MAX_URL_LENGTH:
            raise BlockedURLError("URL too long")
        if _FORBIDDEN_URL_CHARS.search(url):
            raise BlockedURLError("URL contains whitespace, control characters or backslashes")
        m = _SCHEME.match(url)
        if m is None:
            raise BlockedURLError("not an absolute URL")
        scheme = m.group(1).lower()
        if scheme not in policy.schemes:
            raise _blocked(f"scheme {scheme!r}", policy, f"allowed schemes are {sorted(policy.schemes)}")
        rest = url[m.end():]
        if not rest.startswith("//"):
            raise BlockedURLError("URL has no authority ('//host')")
        rest = rest[2:]
        cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        authority, tail = rest[:cut], rest[cut:]
        host, port = _split_authority(authority)
        target = check_target(scheme, host, port, policy)
    except BlockedURLError as e:
        raise BlockedURLError(f"{shown}: {e}") from None
    tail = tail.split("#", 1)[0]
    path, _, query = tail.partition("?")
    return replace(target, path=path or "/", query=query)


def safe_url(url: object) -> str:
    """``url`` fit for a message or a log: no userinfo, query or fragment, secrets redacted."""
    text = str(url)
    text = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@", r"\1", text)
    text = re.split(r"[?#]", text, maxsplit=1)[0]
    if len(text) > 200:
        text = text[:200] + "..."
    return redact(text).encode("ascii", "backslashreplace").decode("ascii")
