"""Item 14: the Calls list finds calls by what was said in them (tenant-scoped, paginated, with the filters)."""

import re

import pytest

from calls.models import Call
from tests import factories

pytestmark = pytest.mark.django_db


def listed_ids(response) -> list[str]:
    return re.findall(r'data-call-id="([0-9a-f-]+)"', response.content.decode())


def call_saying(tenant, *texts, **fields) -> Call:
    call = factories.CallFactory(tenant=tenant, **fields)
    for number, text in enumerate(texts, start=1):
        factories.TranscriptTurnFactory(call=call, turn_number=number, text=text)
    return call


def test_search_finds_calls_whose_conversation_has_every_word(web_client, tenant):
    both = call_saying(tenant, "I need a CLEANING.", "Is Monday at nine free?")
    only_one = call_saying(tenant, "I need a cleaning.", "Tuesday please.")
    call_saying(tenant, "What are your hours?")

    response = web_client.get("/calls/?q=cleaning+monday")

    assert response.status_code == 200
    assert listed_ids(response) == [str(both.pk)]
    assert str(only_one.pk) not in listed_ids(response)
    html = response.content.decode()
    assert 'data-testid="call-matched-turn">“I need a CLEANING.”<' in html


def test_a_call_is_listed_once_however_many_turns_match(web_client, tenant):
    call = call_saying(tenant, "refund please", "a refund for my order", "the refund, yes")

    assert listed_ids(web_client.get("/calls/?q=refund")) == [str(call.pk)]


def test_search_never_finds_another_tenants_calls(web_client, tenant, other_tenant):
    ours = call_saying(tenant, "My invoice is wrong.")
    call_saying(other_tenant, "My invoice is wrong.")

    assert listed_ids(web_client.get("/calls/?q=invoice")) == [str(ours.pk)]


def test_search_combines_with_the_filters_and_pages_keep_it(web_client, tenant):
    for _ in range(27):
        call_saying(tenant, "I want to cancel.", direction=Call.Direction.OUTBOUND)
    call_saying(tenant, "I want to cancel.")  # inbound: filtered out

    first = web_client.get("/calls/?q=cancel&direction=outbound")
    second = web_client.get("/calls/?q=cancel&direction=outbound&page=2")

    assert (len(listed_ids(first)), len(listed_ids(second))) == (25, 2)
    assert "q=cancel&amp;direction=outbound&amp;page=2" in first.content.decode()


def test_nothing_said_matches_says_so(web_client, tenant):
    call_saying(tenant, "Hello there.")

    html = web_client.get("/calls/?q=zebra").content.decode()

    assert "No calls match" in html
    assert 'name="q"' in html and 'value="zebra"' in html
