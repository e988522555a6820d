"""Which addresses and names a partner's URL may reach (mset_platform.egress): the guard
both the subscription check and every delivery's connection use."""

from __future__ import annotations

import pytest

from mset_platform.egress import AllowList, host_refusal, resolved_refusal

ALLOW = AllowList.parse(["127.0.0.1", "10.20.0.0/16", "hooks.partner.internal"])


@pytest.mark.parametrize(
    ("host", "refused", "with_allow_list"),
    [
        ("169.254.169.254", True, True),
        ("metadata.google.internal", True, True),
        ("127.0.0.1", True, False),  # allowed by the list
        ("127.0.0.2", True, True),
        ("::1", True, True),
        ("[::1]", True, True),
        ("::ffff:127.0.0.1", True, True),  # IPv4-mapped: refused even when its v4 is allowed
        ("0.0.0.0", True, True),  # noqa: S104 - an address refused, not a binding
        ("::", True, True),
        ("10.0.0.5", True, True),
        ("10.20.3.4", True, False),
        ("172.16.0.1", True, True),
        ("192.168.1.1", True, True),
        ("100.64.0.1", True, True),  # carrier-grade NAT
        ("224.0.0.1", True, True),
        ("240.0.0.1", True, True),
        ("255.255.255.255", True, True),
        ("192.0.2.10", True, True),  # documentation
        ("fe80::1", True, True),
        ("fc00::1", True, True),
        ("2002:7f00:1::", True, True),  # 6to4 wrapping 127.0.0.1: not reached by relay
        ("localhost", True, True),
        ("LOCALHOST.", True, True),
        ("api.localhost", True, True),
        ("printer.local", True, True),
        ("redis", True, True),  # a single label: the local search domains answer it
        ("hooks.partner.internal", True, False),
        ("8.8.8.8", False, False),
        ("2606:4700:4700::1111", False, False),
        ("hooks.partner.example.org", False, False),
    ],
)
def test_what_a_url_may_name(host: str, refused: bool, with_allow_list: bool) -> None:
    assert (host_refusal(host) is not None) is refused
    assert (host_refusal(host, ALLOW) is not None) is with_allow_list


def test_a_name_is_refused_if_any_address_it_resolves_to_is() -> None:
    assert resolved_refusal("a.example", ["93.184.215.14"]) is None
    why = resolved_refusal("a.example", ["93.184.215.14", "10.0.0.5"])
    assert why is not None and "10.0.0.5" in why and "private" in why
    assert resolved_refusal("a.example", ["127.0.0.1"], ALLOW) is None
    # An allowed name may resolve to private addresses, never to unreachable kinds.
    assert resolved_refusal("hooks.partner.internal", ["10.9.9.9"], ALLOW) is None
    unspecified = "0.0.0.0"  # noqa: S104 - an address refused, not a binding
    assert resolved_refusal("hooks.partner.internal", [unspecified], ALLOW) is not None


@pytest.mark.parametrize("entry", ["10.0.0.5/8", "http://x/", "a..b", "-x.example"])
def test_an_allow_list_entry_is_a_network_or_a_host_name(entry: str) -> None:
    with pytest.raises(ValueError, match="allow-list entry"):
        AllowList.parse([entry])
