"""The guarded transport on real loopback sockets: DNS rebinding, redirects, pinning, TLS SNI."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest

from aixpy.errors import BlockedURLError
from aixpy.http import (
    AsyncGuardedBackend,
    AsyncGuardedTransport,
    GuardedBackend,
    GuardedTransport,
    URLPolicy,
    check_ip,
    system_resolver,
)

from .conftest import HttpServer, RebindingDNS, free_port_pair

MakeServer = Callable[..., HttpServer]
MakeDNS = Callable[[str, str], RebindingDNS]

PINNED = URLPolicy(name="pinned", schemes={"http"}, allowed_hosts={"rebind.test"}, allowed_networks=["127.0.0.2/32"])
ONLY_127_0_0_2 = URLPolicy(name="only-127.0.0.2", schemes={"http"}, allowed_networks=["127.0.0.2/32"])
LOOPBACK_ANY_HOST = URLPolicy(name="loopback", schemes={"http", "https"}, allow_loopback=True)


def _raw_get(ip: str, port: int, path: str, host: str) -> str:
    with socket.create_connection((ip, port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[1].decode()


class CountingResolver:
    def __init__(self, resolve: Callable[[str, int], list[str]]) -> None:
        self.resolve = resolve
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return self.resolve(host, port)


@pytest.fixture
def rebinding_setup(
    make_server: MakeServer, rebinding_dns: MakeDNS
) -> tuple[int, HttpServer, HttpServer, RebindingDNS]:
    port = free_port_pair("127.0.0.2", "127.0.0.1")
    allowed = make_server("127.0.0.2", port, "allowed")
    secret = make_server("127.0.0.1", port, "secret")
    return port, allowed, secret, rebinding_dns("127.0.0.2", "127.0.0.1")


def test_the_dns_server_really_rebinds_and_fools_validate_then_fetch(rebinding_setup: Any) -> None:
    """Control experiment: a guard that validates one lookup and lets the fetch look up again is beaten."""
    port, _allowed, secret, dns = rebinding_setup
    validated = dns.resolve("rebind.test", port)
    for ip in validated:
        check_ip(ip, PINNED)  # passes: 127.0.0.2 is allowed
    fetched_ip = dns.resolve("rebind.test", port)[0]  # the HTTP library's own lookup
    assert (validated, fetched_ip) == (["127.0.0.2"], "127.0.0.1")
    assert _raw_get(fetched_ip, port, "/label", "rebind.test") == "secret"
    assert secret.accepted == 1


def test_dns_rebinding_defeated_sync(rebinding_setup: Any) -> None:
    port, allowed, secret, dns = rebinding_setup
    resolver = CountingResolver(dns.resolve)
    with httpx.Client(transport=GuardedTransport(PINNED, resolver=resolver)) as client:
        for _ in range(5):
            r = client.get(f"http://rebind.test:{port}/label")
            assert r.text == "allowed"
            assert r.extensions["network_stream"].get_extra_info("server_addr")[0] == "127.0.0.2"
    # one connection, one resolution: the address validated is the address used, 5 times
    assert resolver.calls == ["rebind.test"]
    assert dns.queries == ["rebind.test"]
    assert (allowed.accepted, secret.accepted) == (1, 0)
    assert allowed.requests[0]["headers"]["Host"] == f"rebind.test:{port}"  # Host keeps the name
    # the next *new* connection resolves again; the rebinding answer is refused before connecting
    with (httpx.Client(transport=GuardedTransport(PINNED, resolver=resolver)) as client,
          pytest.raises(BlockedURLError, match=r"'rebind.test' -> 127.0.0.1")):
        client.get(f"http://rebind.test:{port}/label")
    assert resolver.calls == ["rebind.test", "rebind.test"]
    assert secret.accepted == 0


async def test_dns_rebinding_defeated_async(rebinding_setup: Any) -> None:
    port, allowed, secret, dns = rebinding_setup
    resolver = CountingResolver(dns.resolve)
    async with httpx.AsyncClient(transport=AsyncGuardedTransport(PINNED, resolver=resolver)) as client:
        for _ in range(5):
            r = await client.get(f"http://rebind.test:{port}/label")
            assert r.text == "allowed"
    assert resolver.calls == ["rebind.test"]
    assert (allowed.accepted, secret.accepted) == (1, 0)
    async with AsyncGuardedTransport(PINNED, resolver=resolver) as transport:
        client = httpx.AsyncClient(transport=transport)
        with pytest.raises(BlockedURLError, match=r"127\.0\.0\.1"):
            await client.get(f"http://rebind.test:{port}/label")
    assert secret.accepted == 0


def test_every_resolved_address_must_pass() -> None:
    backend = GuardedBackend(URLPolicy(), resolver=lambda h, p: ["8.8.8.8", "127.0.0.1"])
    with pytest.raises(BlockedURLError, match="loopback"):
        backend.resolve("mixed.example", 443)
    meta = GuardedBackend(URLPolicy(allow_private=True, allow_loopback=True), resolver=lambda h, p: ["169.254.169.254"])
    with pytest.raises(BlockedURLError, match="metadata"):
        meta.resolve("innocent.example", 443)
    mapped = GuardedBackend(URLPolicy(), resolver=lambda h, p: ["::ffff:10.0.0.1"])
    with pytest.raises(BlockedURLError, match="private"):
        mapped.resolve("v6.example", 443)
    assert GuardedBackend(URLPolicy(), resolver=lambda h, p: ["8.8.8.8", "8.8.8.8"]).resolve("ok.example", 443) == [
        "8.8.8.8"]
    for bad in ([], ["not-an-ip"]):
        with pytest.raises(httpcore.ConnectError):
            GuardedBackend(URLPolicy(), resolver=lambda h, p, bad=bad: bad).resolve("x.example", 443)  # type: ignore[misc]


def test_literal_ips_skip_the_resolver_and_names_are_checked_first() -> None:
    def boom(host: str, port: int) -> list[str]:
        raise AssertionError("resolver must not be called")

    backend = GuardedBackend(LOOPBACK_ANY_HOST, resolver=boom)
    assert backend.resolve("127.0.0.1", 80) == ["127.0.0.1"]
    for host in ("2130706433", "0x7f.1", "metadata.google.internal", "fe80::1%25eth0", "%6c"):
        with pytest.raises(BlockedURLError):
            backend.resolve(host, 80)
    with pytest.raises(BlockedURLError, match="unix"):
        backend.connect_unix_socket("/var/run/docker.sock")


async def test_async_backend_checks_too() -> None:
    backend = AsyncGuardedBackend(URLPolicy(), resolver=lambda h, p: ["10.0.0.7"])
    with pytest.raises(BlockedURLError, match="private"):
        await backend.resolve("intranet.example", 443)
    with pytest.raises(BlockedURLError, match="unix"):
        await backend.connect_unix_socket("/tmp/x.sock")


def test_transport_refuses_encodings_httpx_lets_through(server: HttpServer) -> None:
    """httpx keeps '2130706433' and '0x7f.1' as host names (getaddrinfo would decode them)."""
    with httpx.Client(transport=GuardedTransport(LOOPBACK_ANY_HOST)) as client:
        for host in ("2130706433", "0x7f.1", "127.1"):
            with pytest.raises(BlockedURLError, match="non-canonical"):
                client.get(f"http://{host}:{server.port}/label")
        assert client.get(f"http://127.0.0.1:{server.port}/label").text == "server"
    assert server.accepted == 1


@pytest.mark.parametrize("ip", ["127.0.0.2", "127.0.0.3", "127.1.2.3", "127.255.255.254"])
def test_other_loopback_addresses_work(make_server: MakeServer, ip: str) -> None:
    srv = make_server(ip, 0, ip)
    with httpx.Client(transport=GuardedTransport(LOOPBACK_ANY_HOST)) as client:
        assert client.get(f"http://{ip}:{srv.port}/label").text == ip


def test_system_resolver_on_loopback() -> None:
    assert "127.0.0.1" in system_resolver("localhost", 80)
    assert system_resolver("127.0.0.2", 80) == ["127.0.0.2"]


def test_no_connect_retries(refused_port: int) -> None:
    class Counting(httpcore.SyncBackend):
        attempts = 0

        def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
            Counting.attempts += 1
            return super().connect_tcp(*args, **kwargs)

    with (httpx.Client(transport=GuardedTransport(LOOPBACK_ANY_HOST, network_backend=Counting())) as client,
          pytest.raises(httpx.ConnectError)):
        client.get(f"http://127.0.0.1:{refused_port}/")
    assert Counting.attempts == 1


# --------------------------------------------------------------------------- redirects


@pytest.fixture
def redirect_setup(make_server: MakeServer) -> tuple[HttpServer, HttpServer]:
    return make_server("127.0.0.2", 0, "allowed"), make_server("127.0.0.1", 0, "secret")


def test_redirect_not_followed_by_default(redirect_setup: Any) -> None:
    front, secret = redirect_setup
    with httpx.Client(transport=GuardedTransport(ONLY_127_0_0_2)) as client:
        r = client.get(f"{front.url}/redirect", params={"to": f"{secret.url}/label"})
    assert r.status_code == 302
    assert secret.accepted == 0


@pytest.mark.parametrize(("target", "reason"), [
    ("http://127.0.0.1:{secret}/label", "loopback address 127.0.0.1"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://[::ffff:127.0.0.1]:{secret}/label", "ipv4-mapped"),
    ("http://2130706433:{secret}/label", "non-canonical"),
    ("http://evil.test:{secret}/label", "'evil.test' -> 127.0.0.1"),
    ("https://127.0.0.2:{front}/label", "scheme 'https'"),
])
def test_redirect_hops_are_rechecked_when_following(redirect_setup: Any, target: str, reason: str) -> None:
    front, secret = redirect_setup
    to = target.format(secret=secret.port, front=front.port)
    transport = GuardedTransport(ONLY_127_0_0_2, resolver=lambda h, p: ["127.0.0.1"])
    with httpx.Client(transport=transport, follow_redirects=True) as client:
        assert client.get(f"{front.url}/redirect", params={"to": f"{front.url}/label"}).text == "allowed"
        with pytest.raises(BlockedURLError, match=reason.replace("[", r"\[").replace(".", r"\.")):
            client.get(f"{front.url}/redirect", params={"to": to})
    assert secret.accepted == 0


async def test_redirect_hops_are_rechecked_async(redirect_setup: Any) -> None:
    front, secret = redirect_setup
    async with httpx.AsyncClient(transport=AsyncGuardedTransport(ONLY_127_0_0_2), follow_redirects=True) as client:
        with pytest.raises(BlockedURLError, match="loopback"):
            await client.get(f"{front.url}/redirect", params={"to": f"{secret.url}/label"})
    assert secret.accepted == 0


# --------------------------------------------------------------------------- TLS: SNI and certificate name


@pytest.fixture
def tls_pair(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    assert shutil.which("openssl"), "the TLS test needs the openssl command (Debian package openssl)"
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=api.test", "-addext", "subjectAltName=DNS:api.test"],
                   check=True, capture_output=True)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    return server_ctx, client_ctx


def test_tls_uses_the_original_name_for_sni_and_certificate(make_server: MakeServer, tls_pair: Any) -> None:
    server_ctx, client_ctx = tls_pair
    srv = make_server("127.0.0.2", 0, "tls", tls=server_ctx)
    policy = URLPolicy(name="tls", allowed_hosts={"api.test"}, allowed_networks=["127.0.0.2/32"])
    resolver = CountingResolver(lambda h, p: ["127.0.0.2"])
    with httpx.Client(transport=GuardedTransport(policy, resolver=resolver, verify=client_ctx)) as client:
        r = client.get(f"https://api.test:{srv.port}/echo")
        r2 = client.get(f"https://api.test:{srv.port}/echo")
        assert r2.extensions["network_stream"].get_extra_info("server_addr")[0] == "127.0.0.2"
    assert r.json()["headers"]["host"] == f"api.test:{srv.port}"
    assert r2.status_code == 200
    assert srv.sni == ["api.test"]
    assert resolver.calls == ["api.test"]
    # connecting by IP literal does not match the certificate: verification is real
    ip_policy = URLPolicy(name="tls-ip", allowed_networks=["127.0.0.2/32"])
    with httpx.Client(transport=GuardedTransport(ip_policy, verify=client_ctx)) as client, \
            pytest.raises(httpx.ConnectError, match="certificate"):
        client.get(f"https://127.0.0.2:{srv.port}/echo")


def test_deadline_scope_nesting() -> None:
    from aixpy.http._transport import deadline_scope, time_left

    assert time_left() is None
    with deadline_scope(10) as outer:
        with deadline_scope(100) as inner:
            assert inner == outer  # the earlier deadline wins
        with deadline_scope(None) as unbounded:
            assert unbounded == outer
        with deadline_scope(0.5):
            left = time_left()
            assert left is not None
            assert left <= 0.5
    assert time_left() is None


# --------------------------------------------------------------------------- stale keep-alive connections


class _OneAnswerPerConnection:
    """Answers the first request of each connection; on a second request it closes without a word,
    as a server does whose keep-alive timeout fired just as the client reused the connection."""

    def __init__(self) -> None:
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.answered = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _read_request(self, conn: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += conn.recv(65536)
        return True

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        if self._read_request(conn):
            # counted before sending: once the client holds the answer, the count is visible
            self.answered += 1
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        self._read_request(conn)  # the reuse: swallowed, then the connection is closed


def test_a_dead_kept_alive_connection_is_replaced_not_reported() -> None:
    server = _OneAnswerPerConnection()
    policy = URLPolicy(name="test", schemes=frozenset({"http"}), allow_loopback=True)
    with httpx.Client(transport=GuardedTransport(policy)) as client:
        got = [client.post(f"http://127.0.0.1:{server.port}/x", json={"i": i}).text for i in range(3)]
    assert got == ["ok", "ok", "ok"]
    assert server.answered == 3
    assert server.connections == 3


async def test_a_dead_kept_alive_connection_is_replaced_async() -> None:
    server = _OneAnswerPerConnection()
    policy = URLPolicy(name="test", schemes=frozenset({"http"}), allow_loopback=True)
    async with httpx.AsyncClient(transport=AsyncGuardedTransport(policy)) as client:
        got = [(await client.post(f"http://127.0.0.1:{server.port}/x", json={"i": i})).text for i in range(3)]
    assert got == ["ok", "ok", "ok"]
    assert server.answered == 3


class _HalfAnswer(_OneAnswerPerConnection):
    """Reads each request, sends half a response head, then closes: the server did answer, so the
    request must not be sent again."""

    def _handle(self, conn: socket.socket) -> None:
        if self._read_request(conn):
            self.answered += 1
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-len")


def test_a_connection_closed_mid_answer_is_reported_not_resent() -> None:
    server = _HalfAnswer()
    policy = URLPolicy(name="test", schemes=frozenset({"http"}), allow_loopback=True)
    with httpx.Client(transport=GuardedTransport(policy)) as client, pytest.raises(httpx.RemoteProtocolError):
        client.get(f"http://127.0.0.1:{server.port}/x")
    assert server.answered == 1
    server.sock.close()


async def test_a_connection_closed_mid_answer_is_reported_not_resent_async() -> None:
    server = _HalfAnswer()
    policy = URLPolicy(name="test", schemes=frozenset({"http"}), allow_loopback=True)
    async with httpx.AsyncClient(transport=AsyncGuardedTransport(policy)) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"http://127.0.0.1:{server.port}/x")
    assert server.answered == 1
    server.sock.close()
