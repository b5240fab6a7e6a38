"""NAT64 local-use prefix (RFC 8215, 64:ff9b:1::/48): refused outright, whatever the prefix length.

RFC 6052 places the IPv4 address at a position that depends on the prefix length (/32 /40 /48 /56 /64
/96, skipping the reserved "u" octet, bits 64-71). For the local-use prefix that length is chosen by
the network, so the guard cannot know which IPv4 address an address reaches: it refuses them all.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aixpy.config import OpenAIEmbeddingsConfig
from aixpy.embeddings.openai import OpenAIEmbeddings
from aixpy.errors import BlockedURLError
from aixpy.http import HttpClient, HttpConfig, URLPolicy, check_ip, check_url, public_policy
from aixpy.llm.providers.openai import OpenAIModel

KEY = "sk-proj-SuperSecretValue1234567890"
PUBLIC = public_policy()
PERMISSIVE = URLPolicy(name="permissive", schemes={"http", "https"}, allow_private=True, allow_loopback=True)
PREFIX_LENGTHS = (32, 40, 48, 56, 64, 96)
LOCAL_USE = int(ipaddress.IPv6Address("64:ff9b:1::"))
WELL_KNOWN = int(ipaddress.IPv6Address("64:ff9b::"))


def rfc6052(prefix: int, length: int, v4: ipaddress.IPv4Address, suffix: int = 0) -> ipaddress.IPv6Address:
    """Embed ``v4`` after the first ``length`` bits of ``prefix`` as RFC 6052 section 2.2 says."""
    bits = int(v4)
    keep = prefix >> (128 - length) << (128 - length)
    if length == 96:
        return ipaddress.IPv6Address(keep | bits)
    # 32-bit v4 split around the u octet (bits 64-71): before it `before` bits, after it the rest
    before = 64 - length
    after = 32 - before
    high = bits >> after
    low = bits & ((1 << after) - 1)
    value = keep | (high << 64) | (low << (56 - after)) | (suffix & ((1 << (56 - after)) - 1))
    return ipaddress.IPv6Address(value)


def test_rfc6052_helper_matches_the_rfc_examples() -> None:
    # RFC 6052 section 2.4, 192.0.2.33 with the prefix 2001:db8:122:344::/n
    v4 = ipaddress.IPv4Address("192.0.2.33")
    base = int(ipaddress.IPv6Address("2001:db8:122:344::"))
    expected = {32: "2001:db8:c000:221::", 40: "2001:db8:1c0:2:21::", 48: "2001:db8:122:c000:2:2100::",
                56: "2001:db8:122:3c0:0:221::", 64: "2001:db8:122:344:c0:2:2100:0", 96: "2001:db8:122:344::c000:221"}
    for length, text in expected.items():
        assert rfc6052(base, length, v4) == ipaddress.IPv6Address(text)


@pytest.mark.parametrize("v4", ["127.0.0.1", "10.0.0.1"])
def test_the_reported_slash64_addresses_are_refused_with_the_reason(v4: str) -> None:
    address = rfc6052(LOCAL_USE, 64, ipaddress.IPv4Address(v4))
    assert str(address) == {"127.0.0.1": "64:ff9b:1:0:7f:0:100:0", "10.0.0.1": "64:ff9b:1:0:a:0:100:0"}[v4]
    for policy in (PUBLIC, PERMISSIVE):
        with pytest.raises(BlockedURLError, match=r"NAT64 local-use prefix 64:ff9b:1::/48 \(RFC 8215\) is always"):
            check_url(f"https://[{address}]/", policy)


def test_local_use_is_refused_even_when_a_network_allows_it() -> None:
    policy = URLPolicy(name="all", allow_private=True, allow_loopback=True, allowed_networks=["::/0", "0.0.0.0/0"])
    with pytest.raises(BlockedURLError, match="local-use"):
        check_ip("64:ff9b:1::808:808", policy)  # even the /96 form of a public address


def test_http_client_refuses_the_literal_and_a_name_resolving_to_it() -> None:
    with pytest.raises(BlockedURLError, match="local-use"):
        HttpClient(HttpConfig("https://[64:ff9b:1:0:7f:0:100:0]/v1", policy=PUBLIC))
    resolved: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["64:ff9b:1:0:a:0:100:0"]

    with (HttpClient(HttpConfig("https://api.example.com/v1", policy=PUBLIC, resolver=resolver)) as client,
          pytest.raises(BlockedURLError, match="local-use")):
        client.request("GET", "/models")
    assert resolved == ["api.example.com"]


@pytest.mark.parametrize("address", ["64:ff9b:1:0:7f:0:100:0", "64:ff9b:1:0:a:0:100:0", "64:ff9b:1::7f00:1"])
def test_provider_endpoints_refuse_local_use_addresses(address: str) -> None:
    with pytest.raises(BlockedURLError, match="local-use"):
        OpenAIModel(api_key=KEY, endpoint=f"https://[{address}]/v1", environ={})
    with pytest.raises(BlockedURLError, match="local-use"):
        OpenAIEmbeddings(OpenAIEmbeddingsConfig(api_key=KEY, base_url=f"https://[{address}]/v1"), environ={})


_NON_PUBLIC_V4 = st.sampled_from(["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                  "100.64.0.0/10", "169.254.0.0/16", "0.0.0.0/8"]).flatmap(
    lambda cidr: st.integers(0, ipaddress.ip_network(cidr).num_addresses - 1).map(
        lambda i, cidr=cidr: ipaddress.ip_network(cidr)[i]))


@settings(max_examples=400, deadline=None)
@given(v4=_NON_PUBLIC_V4, length=st.sampled_from(PREFIX_LENGTHS), suffix=st.integers(0, 2**64 - 1),
       local_use=st.booleans(), prefix_tail=st.integers(0, 2**80 - 1))
def test_every_non_public_ipv4_at_every_prefix_length_is_refused(
    v4: ipaddress.IPv4Address, length: int, suffix: int, local_use: bool, prefix_tail: int,
) -> None:
    prefix = (LOCAL_USE | prefix_tail) if local_use else WELL_KNOWN
    address = rfc6052(prefix, length, v4, suffix)
    for policy in (PUBLIC, PERMISSIVE):
        with pytest.raises(BlockedURLError):
            check_ip(address, policy)
        with pytest.raises(BlockedURLError):
            check_url(f"https://[{address}]/", policy)
