"""The SSRF guard's text half: every address class and host encoding, under each policy."""

from __future__ import annotations

import ipaddress

import pytest

from aixpy.errors import BlockedURLError, ConfigError, InvalidInputError
from aixpy.http import URLPolicy, check_ip, check_url, classify_ip, local_policy, public_policy, safe_url

POLICIES = {
    "public": public_policy(),  # any host whose addresses are public
    "openai": public_policy("api.openai.com"),
    "local": local_policy(environ={}),
    # local address rules without a host allowlist: shows what even allow_private/loopback refuse
    "local_any": URLPolicy(name="local-any", schemes={"http", "https"}, allow_private=True, allow_loopback=True),
}

OK = None
# (url, policy, None if allowed else a fragment of the refusal reason)
CASES: list[tuple[str, str, str | None]] = [
    # ---- public: allowed
    ("https://api.openai.com/v1", "public", OK),
    ("https://8.8.8.8/", "public", OK),
    ("https://[2001:4860:4860::8888]/", "public", OK),
    ("https://[64:ff9b::808:808]/", "public", OK),  # NAT64 of a public address
    ("https://[2002:808:808::1]/", "public", OK),  # 6to4 of a public address
    # ---- schemes
    ("http://api.openai.com/", "public", "scheme 'http'"),
    ("ftp://example.com/", "public", "scheme 'ftp'"),
    ("file:///etc/passwd", "public", "scheme 'file'"),
    ("gopher://127.0.0.1:6379/_", "public", "scheme 'gopher'"),
    ("javascript:alert(1)", "public", "scheme 'javascript'"),
    # ---- loopback / private / link-local / metadata
    ("https://127.0.0.1/", "public", "loopback address 127.0.0.1"),
    ("https://127.0.0.2/", "public", "loopback"),
    ("https://127.255.255.254/", "public", "loopback"),
    ("https://[::1]/", "public", "loopback address ::1"),
    ("https://10.0.0.1/", "public", "private address 10.0.0.1"),
    ("https://172.16.5.4/", "public", "private"),
    ("https://172.31.255.255/", "public", "private"),
    ("https://192.168.1.1/", "public", "private"),
    ("https://[fc00::1]/", "public", "private"),
    ("https://[fd12:3456::1]/", "public", "private"),
    ("https://[fec0::1]/", "public", "private"),
    ("https://169.254.1.1/", "public", "link-local"),
    ("https://[fe80::1]/", "public", "link-local"),
    ("https://169.254.169.254/latest/meta-data/", "public", "cloud metadata address 169.254.169.254"),
    ("https://169.254.170.2/v2/credentials", "public", "cloud metadata"),
    ("https://[fd00:ec2::254]/", "public", "cloud metadata"),
    ("https://100.100.100.200/", "public", "cloud metadata"),
    # ---- unspecified, multicast, broadcast, reserved, benchmark, CGNAT, documentation
    ("https://0.0.0.0/", "public", "unspecified"),
    ("https://0.1.2.3/", "public", "unspecified"),
    ("https://[::]/", "public", "unspecified"),
    ("https://224.0.0.1/", "public", "multicast"),
    ("https://239.255.255.250/", "public", "multicast"),
    ("https://[ff02::1]/", "public", "multicast"),
    ("https://255.255.255.255/", "public", "broadcast"),
    ("https://240.0.0.1/", "public", "reserved"),
    ("https://192.0.0.8/", "public", "reserved"),
    ("https://198.18.0.1/", "public", "benchmark"),
    ("https://198.19.255.254/", "public", "benchmark"),
    ("https://100.64.0.1/", "public", "cgnat"),
    ("https://100.127.255.254/", "public", "cgnat"),
    ("https://192.0.2.1/", "public", "documentation"),
    ("https://198.51.100.7/", "public", "documentation"),
    ("https://203.0.113.9/", "public", "documentation"),
    ("https://[2001:db8::1]/", "public", "documentation"),
    ("https://[100::1]/", "public", "reserved"),
    # ---- IPv4 embedded in IPv6
    ("https://[::ffff:127.0.0.1]/", "public", "loopback address 127.0.0.1 embedded in ipv4-mapped"),
    ("https://[::ffff:7f00:1]/", "public", "embedded in ipv4-mapped"),
    ("https://[0:0:0:0:0:ffff:a00:1]/", "public", "private address 10.0.0.1 embedded"),
    ("https://[::ffff:169.254.169.254]/", "public", "cloud metadata address 169.254.169.254"),
    ("https://[::127.0.0.1]/", "public", "ipv4-compatible"),
    ("https://[::a00:1]/", "public", "ipv4-compatible"),
    ("https://[2002:7f00:1::]/", "public", "embedded in 6to4"),
    ("https://[2002:c0a8:101::1]/", "public", "private address 192.168.1.1 embedded in 6to4"),
    ("https://[2002:a9fe:a9fe::]/", "public", "cloud metadata"),
    ("https://[64:ff9b::7f00:1]/", "public", "embedded in nat64"),
    ("https://[64:ff9b::10.0.0.1]/", "public", "private address 10.0.0.1 embedded in nat64"),
    ("https://[64:ff9b::a9fe:a9fe]/", "public", "cloud metadata"),
    ("https://[64:ff9b:1::a00:1]/", "public", "nat64"),
    ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "public", "teredo"),
    # ---- numeric encodings (refused whatever they decode to)
    ("https://2130706433/", "public", "non-canonical IPv4 address '2130706433' (decodes to 127.0.0.1)"),
    ("https://0177.0.0.1/", "public", "(decodes to 127.0.0.1)"),
    ("https://0x7f.1/", "public", "(decodes to 127.0.0.1)"),
    ("https://0x7f000001/", "public", "(decodes to 127.0.0.1)"),
    ("https://0X7F.0.0.1/", "public", "(decodes to 127.0.0.1)"),
    ("https://127.1/", "public", "(decodes to 127.0.0.1)"),
    ("https://127.0.1/", "public", "(decodes to 127.0.0.1)"),
    ("https://017700000001/", "public", "(decodes to 127.0.0.1)"),
    ("https://127.000.000.001/", "public", "(decodes to 127.0.0.1)"),
    ("https://3232235777/", "public", "(decodes to 192.168.1.1)"),
    ("https://2852039166/", "public", "(decodes to 169.254.169.254)"),
    ("https://0251.0376.0251.0376/", "public", "(decodes to 169.254.169.254)"),
    ("https://134744072/", "public", "(decodes to 8.8.8.8)"),  # even a public one
    ("https://1.2.3.4.5/", "public", "invalid numeric host"),
    ("https://256.1.1.1/", "public", "invalid numeric host"),
    ("https://example.0x10/", "public", "invalid numeric host"),
    ("https://4294967296/", "public", "invalid numeric host"),
    # ---- IPv6 literal forms
    ("https://[fe80::1%25eth0]/", "public", "zone identifiers"),
    ("https://[::1%lo]/", "public", "zone identifiers"),
    ("https://[::1/", "public", "unterminated"),
    ("https://::1/", "public", "brackets"),
    ("https://[::1]x/", "public", "garbage"),
    ("https://[127.0.0.1]/", "public", "invalid IPv6"),
    # ---- userinfo, backslashes, percent-encoding, whitespace
    ("https://good.com@evil.com/", "public", "userinfo"),
    ("https://user:pass@api.openai.com/", "public", "userinfo"),
    ("https://api.openai.com\\@evil.com/", "public", "backslashes"),
    ("https://evil.com\\.api.openai.com/", "public", "backslashes"),
    ("https://%31%32%37.0.0.1/", "public", "percent-encoded"),
    ("https://%6c%6f%63%61%6c%68%6f%73%74/", "public", "percent-encoded"),
    (" https://api.openai.com/", "public", "whitespace"),
    ("https://api.openai.com/\n", "public", "control"),
    ("https://api.openai.com\t.evil/", "public", "whitespace"),
    ("https://exa$mple.com/", "public", "invalid host name"),
    ("https://a..b/", "public", "invalid host name"),
    # ---- IDNA / Unicode normalisation
    ("https://１２７.０.０.１/", "public", "loopback address 127.0.0.1"),  # fullwidth digits
    ("https://127。0。0。1/", "public", "loopback"),  # ideographic full stops
    ("https://①②⑦.0.0.1/", "public", "loopback"),  # circled digits
    ("https://ｍｅｔａｄａｔａ.google.internal/", "public", "metadata host"),
    # ---- metadata names, ports, malformed
    ("https://metadata.google.internal/computeMetadata/v1/", "public", "metadata host"),
    ("https://METADATA.GOOGLE.INTERNAL./", "public", "metadata host"),
    ("https://api.openai.com:0/", "public", "invalid port"),
    ("https://api.openai.com:99999/", "public", "invalid port"),
    ("https://api.openai.com:-1/", "public", "invalid port"),
    ("https://api.openai.com:/", "public", "invalid port"),
    ("//api.openai.com/", "public", "not an absolute URL"),
    ("https:api.openai.com", "public", "no authority"),
    ("https:///path", "public", "empty host"),
    # ---- openai: only its official host
    ("https://api.openai.com/v1/chat/completions", "openai", OK),
    ("https://API.OpenAI.com./v1", "openai", OK),
    ("https://api.openai.com:443/v1", "openai", OK),
    ("https://api.openai.com.evil.com/", "openai", "not in the allowed hosts"),
    ("https://evil.com/", "openai", "not in the allowed hosts"),
    ("https://evil.com#@api.openai.com/", "openai", "not in the allowed hosts"),
    ("https://evil.com?@api.openai.com/", "openai", "not in the allowed hosts"),
    ("https://api.openai.com@evil.com/", "openai", "userinfo"),
    ("https://аpi.openai.com/", "openai", "not in the allowed hosts"),  # Cyrillic a
    ("https://8.8.8.8/", "openai", "not in the allowed hosts"),
    ("http://api.openai.com/", "openai", "scheme"),
    # ---- local: exact host allowlist, http allowed
    ("http://localhost:11434/api/chat", "local", OK),
    ("http://LOCALHOST.:11434/", "local", OK),
    ("http://ｌｏｃａｌｈｏｓｔ:11434/", "local", OK),
    ("http://127.0.0.1:11434/", "local", OK),
    ("http://[::1]:11434/", "local", OK),
    ("http://[0:0:0:0:0:0:0:1]:11434/", "local", OK),
    ("http://ollama:11434/", "local", OK),
    ("http://ollama-service:11434/", "local", OK),
    ("https://localhost/", "local", OK),
    ("ftp://localhost/", "local", "scheme"),
    ("http://127.1:11434/", "local", "non-canonical"),
    ("http://2130706433:11434/", "local", "non-canonical"),
    ("http://0x7f.0.0.1/", "local", "non-canonical"),
    ("http://localhost@evil.com/", "local", "userinfo"),
    ("http://evil.com/", "local", "not in the allowed hosts"),
    ("http://ollama.evil.com/", "local", "not in the allowed hosts"),
    ("http://127.0.0.2/", "local", "not in the allowed hosts"),
    ("http://169.254.169.254/", "local", "not in the allowed hosts"),
    ("http://[::ffff:127.0.0.1]:11434/", "local", "not in the allowed hosts"),
    ("http://metadata.google.internal/", "local", "metadata host"),
    # ---- local address rules (allow_private + allow_loopback): metadata and the rest still refused
    ("http://10.1.2.3:8000/", "local_any", OK),
    ("http://192.168.0.10/", "local_any", OK),
    ("http://100.101.102.103/", "local_any", OK),  # CGNAT / Tailscale counts as private
    ("http://127.0.0.5/", "local_any", OK),
    ("http://[::1]/", "local_any", OK),
    ("http://[::ffff:127.0.0.1]/", "local_any", OK),  # mapped = the v4 address itself
    ("http://[fd12::1]/", "local_any", OK),
    ("http://169.254.169.254/latest/meta-data/", "local_any", "cloud metadata"),
    ("http://169.254.170.2/v2/credentials", "local_any", "cloud metadata"),
    ("http://[fd00:ec2::254]/", "local_any", "cloud metadata"),
    ("http://100.100.100.200/", "local_any", "cloud metadata"),
    ("http://[::ffff:169.254.169.254]/", "local_any", "cloud metadata"),
    ("http://[64:ff9b::a9fe:a9fe]/", "local_any", "cloud metadata"),
    ("http://[2002:7f00:1::]/", "local_any", "6to4"),
    ("http://[64:ff9b::7f00:1]/", "local_any", "nat64"),
    ("http://169.254.10.10/", "local_any", "link-local"),
    ("http://[fe80::1]/", "local_any", "link-local"),
    ("http://0.0.0.0:11434/", "local_any", "unspecified"),
    ("http://[::]/", "local_any", "unspecified"),
    ("http://224.0.0.251/", "local_any", "multicast"),
    ("http://255.255.255.255/", "local_any", "broadcast"),
    ("http://198.18.0.1/", "local_any", "benchmark"),
    ("http://0177.0.0.1/", "local_any", "non-canonical"),
]


@pytest.mark.parametrize(("url", "policy", "reason"), CASES, ids=[f"{p}:{u!r}" for u, p, _ in CASES])
def test_check_url(url: str, policy: str, reason: str | None) -> None:
    if reason is None:
        target = check_url(url, POLICIES[policy])
        assert target.scheme in ("http", "https")
        return
    with pytest.raises(BlockedURLError) as info:
        check_url(url, POLICIES[policy])
    assert reason in str(info.value)


def test_case_count() -> None:
    assert len(CASES) >= 60


def test_canonical_target() -> None:
    t = check_url("HTTPS://API.OpenAI.com.:443/v1/chat?x=1#frag", POLICIES["openai"])
    assert (t.scheme, t.host, t.port, t.path, t.query) == ("https", "api.openai.com", 443, "/v1/chat", "x=1")
    assert t.origin == "https://api.openai.com"
    assert t.url == "https://api.openai.com/v1/chat?x=1"
    assert str(t) == "https://api.openai.com/v1/chat"  # never the query
    v6 = check_url("http://[0::1]:8080", POLICIES["local"])
    assert (v6.host, v6.port, v6.origin, v6.ip) == ("::1", 8080, "http://[::1]:8080", ipaddress.ip_address("::1"))


def test_messages_carry_no_secrets() -> None:
    url = "https://user:sk-proj-ABCDEFGHIJKLMNOP@evil.example/path?api_key=sk-ABCDEFGHIJKLMNOPQRST&token=t0ps3cret"
    with pytest.raises(BlockedURLError) as info:
        check_url(url, POLICIES["openai"])
    msg = str(info.value)
    for secret in ("ABCDEFGHIJKLMNOP", "t0ps3cret", "user:", "api_key"):
        assert secret not in msg
    assert "https://evil.example/path" in msg
    assert safe_url("http://a:b@h/p?q=1#f") == "http://h/p"
    assert safe_url("https://h/p/sk-abcdefghijklmnopqrstu") == "https://h/p/sk-***"


def test_not_a_string() -> None:
    with pytest.raises(BlockedURLError, match="must be a string"):
        check_url(b"https://x/", POLICIES["public"])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize(("ip", "category", "via"), [
    ("8.8.8.8", "public", None),
    ("127.0.0.1", "loopback", None),
    ("::ffff:10.1.1.1", "private", "ipv4-mapped"),
    ("2002:c0a8:0101::", "private", "6to4"),
    ("64:ff9b::7f00:1", "loopback", "nat64"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "tunnel", "teredo"),
    ("::7f00:1", "reserved", "ipv4-compatible"),
    ("fe80::1%eth0", "link-local", None),
    ("4000::1", "reserved", None),
    ("169.254.169.254", "metadata", None),
    ("fd00:ec2::254", "metadata", None),
])
def test_classify_ip(ip: str, category: str, via: str | None) -> None:
    cls = classify_ip(ip)
    assert (cls.category, cls.via) == (category, via)
    assert category in cls.describe()


def test_allowed_networks_never_unlock_metadata() -> None:
    policy = URLPolicy(name="lan", schemes={"http"}, allowed_networks=["169.254.0.0/16", "10.1.2.0/24",
                                                                       "fd00:ec2::/64"])
    assert check_ip("169.254.1.1", policy).category == "link-local"
    assert check_ip("10.1.2.9", policy).category == "private"
    with pytest.raises(BlockedURLError, match="private"):
        check_ip("10.1.3.9", policy)
    for metadata in ("169.254.169.254", "fd00:ec2::254"):
        with pytest.raises(BlockedURLError, match="always blocked"):
            check_ip(metadata, policy)
    everything = URLPolicy(name="all", allowed_hosts=["169.254.169.254"], allow_private=True, allow_loopback=True,
                           allowed_networks=["0.0.0.0/0", "::/0"])
    with pytest.raises(BlockedURLError, match="always blocked"):
        check_url("https://169.254.169.254/", everything)


# --------------------------------------------------------------------------- policies


def test_local_policy_reads_ollama_allowed_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_ALLOWED_HOSTS", " gpu-box , 10.0.0.5,,Inference.LAN ")
    policy = local_policy(extra_hosts=["tei"])
    assert policy.allowed_hosts is not None
    assert {"gpu-box", "10.0.0.5", "inference.lan", "tei", "localhost", "::1", "ollama"} <= set(policy.allowed_hosts)
    assert check_url("http://gpu-box:11434/", policy).host == "gpu-box"
    assert check_url("http://10.0.0.5:11434/", policy).ip == ipaddress.ip_address("10.0.0.5")
    monkeypatch.delenv("OLLAMA_ALLOWED_HOSTS")
    with pytest.raises(BlockedURLError):  # read when the policy is built, not later
        check_url("http://gpu-box:11434/", local_policy())
    strict = local_policy(allow_private=False, environ={"OLLAMA_ALLOWED_HOSTS": "10.0.0.5"})
    with pytest.raises(BlockedURLError, match="private"):
        check_url("http://10.0.0.5/", strict)


def test_local_policy_rejects_bad_env_host() -> None:
    with pytest.raises(ConfigError, match="OLLAMA_ALLOWED_HOSTS"):
        local_policy(environ={"OLLAMA_ALLOWED_HOSTS": "ok,0x7f.1"})


def test_policy_validation_and_extras() -> None:
    with pytest.raises(InvalidInputError):
        URLPolicy(schemes={"ftp"})
    with pytest.raises(InvalidInputError):
        URLPolicy(allowed_ports=[0])
    with pytest.raises(InvalidInputError):
        URLPolicy(allowed_hosts=["bad host"])
    with pytest.raises(InvalidInputError):
        URLPolicy(allowed_networks=["10.0.0.0/33"])
    p = public_policy("api.openai.com", extra_hosts=["my-proxy.example.com"], allowed_ports=[443])
    assert check_url("https://my-proxy.example.com/v1", p).host == "my-proxy.example.com"
    with pytest.raises(BlockedURLError, match="port 8443"):
        check_url("https://api.openai.com:8443/", p)
    wider = POLICIES["openai"].with_hosts("Azure.Example.com")
    assert check_url("https://azure.example.com/", wider).host == "azure.example.com"
    assert POLICIES["public"].with_hosts("x.example") is POLICIES["public"]
