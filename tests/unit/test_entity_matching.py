"""Same-person and same-place matching of mentions, and the network view's words
(ADR 0030): plain logic."""

from __future__ import annotations

from mset_contract.entities import EntityGraph, GraphEdge, GraphNode
from services.referral.entity_matching import compare, keys_of
from services.referral.network_svg import render_network


def test_one_mobile_written_three_ways_is_one_key() -> None:
    ways = ["07700 900461", "+44 7700 900461", "07700-900461"]
    keys = [keys_of("person", {"phones": [w]}) for w in ways]
    assert keys[0] == keys[1] == keys[2] == {("phone", "07700900461")}


def test_handles_registrations_postcodes_and_addresses_are_normalised() -> None:
    assert keys_of("person", {"handles": ["@Mo_Quill"], "vehicles": ["qf19 xkz"]}) == {
        ("handle", "mo_quill"),
        ("vehicle", "QF19XKZ"),
    }
    place = keys_of(
        "location", {"postcode": "nt9 4zq", "address": "14 Larkspur Parade,  Northtown"}
    )
    assert place == {("postcode", "NT94ZQ"), ("address", "14 larkspur parade northtown")}


def test_what_two_mentions_share_orders_the_queue_and_a_name_that_sounds_alike_only_finds() -> None:
    a = {"names": ["Mahmood Quillfeather"]}
    b = {"names": ["Mahmud Quilfeather"]}
    same_phone = compare({"phone", "name_sound"}, a, b)
    assert same_phone.agreement == ("phone", "name_similar")
    assert same_phone.score == 6.0
    sounds_only = compare({"name_sound"}, {"names": ["Mo"]}, {"names": ["Moe Smith"]})
    assert sounds_only.agreement == ()  # found, but nothing to suggest


def test_the_network_view_says_the_pattern_in_words_and_escapes_labels() -> None:
    graph = EntityGraph(
        nodes=[
            GraphNode(id="c1", kind="child", label="Case 1", local_authority="northshire"),
            GraphNode(id="h1", kind="hidden", label="A child in eastmoor"),
            GraphNode(id="p1", kind="location", label="Place: <Kebabs & Co>"),
        ],
        edges=[
            GraphEdge(source="c1", target="p1", kind="mentions"),
            GraphEdge(source="h1", target="p1", kind="mentions"),
            GraphEdge(source="c1", target="p1", kind="action"),
        ],
    )
    svg = render_network(graph, title="Network")
    assert 'role="img"' in svg and '<title id="network-title">Network</title>' in svg
    assert (
        "2 children linked through 0 people and 1 place of concern; 1 of the children in "
        "authorities that have not shared; 1 plan action." in svg
    )
    assert "&lt;Kebabs &amp; Co&gt;" in svg and "<Kebabs" not in svg
    assert svg.count("stroke-dasharray") == 1
