"""The browser test call as a carrier: transfers, hang-ups and tenancy over the real test-call socket.

A real aiortc peer is the browser and talks over /ws/v1/test-calls (the ASGI application, Channels'
WebsocketCommunicator); the agent runs on the scripted engines. A transfer asked through the API or by
the agent goes through `telephony.carriers.browser` exactly as a phone carrier's would: the browser is
told, the carrier reports `call.transferred`, and the call stores the events a phone call stores.
"""

import functools

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from calls.models import Call, CallEvent
from calls.selectors import BridgeCall
from telephony.carriers.browser import BrowserCallError, BrowserCarrier
from telephony.consumers import BrowserCallConsumer
from tenants.services import api_key_create
from tests import factories
from tests.api.conftest import key_client
from tests.telephony.bridge_support import wait_for_call
from tests.telephony.peer import CallerPeer
from tests.telephony.test_bridge_calls import tone_wav
from tests.voice.session_fakes import Reply, last_user_text
from tests.voice.session_support import FAST_TURNS, fake_models, make_agent
from voiceapp.asgi import application

TIMEOUT = 20
TARGETS = [
    {"name": "Front desk", "destination": "ext:1001", "type": "warm", "description": "Reception"},
    {"name": "Billing", "destination": "+15550002222", "type": "blind", "description": "Invoices"},
]
NO_PHONE_NETWORK = "A test call cannot reach the phone network: on a phone call the caller would now be connected to "


def respond(chat_ctx) -> Reply:
    if "front desk" in last_user_text(chat_ctx).lower():
        arguments = {"target": "Front desk", "context": "A billing question."}
        return Reply(text="Let me get the front desk.", tool="transfer_call", arguments=arguments)
    return Reply(text="Sure, I can help with that.")


def engines(monkeypatch, lines=()):
    options = {
        "models_factory": functools.partial(fake_models, respond, list(lines)),
        "turn_handling": FAST_TURNS,
        "session_options": {"session_close_transcript_timeout": 0.1},
    }
    monkeypatch.setattr(BrowserCallConsumer, "bridge_options", options)


@pytest.fixture
def agent(transactional_db, monkeypatch):
    engines(monkeypatch)
    tenant = factories.TenantFactory(name="Acme Dental", slug="acme-dental")
    factories.SubscriptionFactory(tenant=tenant)
    agent = make_agent(tenant, name="Receptionist", greeting="Hello from Acme, this is a test call.", tools=[])
    agent.transfer_targets = TARGETS
    agent.save()
    return agent


class Browser:
    """The dashboard's side of a test call: the socket, its messages in order, and the WebRTC peer."""

    def __init__(self, key: str):
        headers = [(b"origin", b"http://localhost"), (b"x-api-key", key.encode())]
        self.socket = WebsocketCommunicator(application, "/ws/v1/test-calls", headers=headers)
        self.peer = CallerPeer()
        self.seen: list[dict] = []
        self.call_id = ""

    async def start(self, agent) -> None:
        connected, _ = await self.socket.connect(TIMEOUT)
        assert connected
        offer = await self.peer.create_offer()
        await self.socket.send_json_to({"type": "start", "agent_id": str(agent.pk), "sdp": offer})
        answer = await self.socket.receive_json_from(TIMEOUT)
        assert answer["type"] == "answer", answer
        self.call_id = answer["call_id"]
        await self.peer.accept_answer(answer["sdp"])
        await self.peer.wait_heard(0.3, timeout=TIMEOUT)  # the greeting, over WebRTC
        await wait_for_call(pk=self.call_id, status="conversing")

    async def until(self, predicate) -> dict:
        """Read messages until one matches `predicate`; returns it (all are kept in `seen`)."""
        while True:
            message = await self.socket.receive_json_from(TIMEOUT)
            self.seen.append(message)
            if predicate(message):
                return message

    async def until_ended(self) -> dict:
        return await self.until(lambda m: m["type"] == "ended")

    async def close(self) -> None:
        await self.socket.disconnect()
        await self.peer.hangup()

    def of_type(self, kind: str) -> list[dict]:
        return [m for m in self.seen if m["type"] == kind]

    def events(self) -> list[str]:
        return [m["event"] for m in self.of_type("event")]


@database_sync_to_async
def api(tenant, method: str, path: str, body=None):
    return getattr(key_client(tenant), method)(path, body, format="json")


def stored_events(call_id) -> list[str]:
    rows = CallEvent.objects.dangerously_unscoped().filter(call_id=call_id).order_by("sequence")
    return list(rows.values_list("event_type", flat=True))


def payload_of(call_id, event_type) -> dict:
    return CallEvent.objects.dangerously_unscoped().get(call_id=call_id, event_type=event_type).payload


def a_call(agent, scenario):
    key = api_key_create(tenant=agent.tenant, name="socket", scopes=["read", "write"]).secret

    async def run():
        browser = Browser(key)
        try:
            await browser.start(agent)
            return await scenario(browser)
        finally:
            await browser.close()

    return async_to_sync(run)()


def test_a_blind_transfer_through_the_api_tells_the_browser_and_ends_the_call_transferred(agent):
    async def scenario(browser):
        response = await api(
            agent.tenant, "post", f"/v1/calls/{browser.call_id}/transfer", {"type": "blind", "target": "Billing"}
        )
        assert response.status_code == 202, response.content
        await browser.until_ended()
        return browser

    browser = a_call(agent, scenario)
    call_id = browser.call_id
    assert browser.of_type("transfer") == [
        {
            "type": "transfer",
            "call_id": call_id,
            "transfer_type": "blind",
            "target": "+15550002222",
            "message": NO_PHONE_NETWORK + "+15550002222.",
        }
    ]
    assert browser.seen[-1] == {"type": "ended", "call_id": call_id, "end_reason": "transferred"}
    assert browser.of_type("hangup") == []  # the caller was handed over, not hung up on
    call = Call.objects.dangerously_unscoped().get(pk=call_id)
    assert (call.status, call.end_reason, call.external_call_id) == ("ended", "transferred", f"browser:{call_id}")
    kinds = stored_events(call_id)
    assert kinds.index("call.transfer_requested") < kinds.index("call.transferred") < kinds.index("call.ended")
    assert "call.transfer_failed" not in kinds
    assert payload_of(call_id, "call.transferred") == {"call_id": call_id, "transferred_to": "+15550002222"}


@pytest.mark.slow  # the caller speaks and the agent answers with a tool call: seconds
def test_the_agent_asks_for_a_warm_transfer_and_the_browser_is_shown_the_briefing(agent, monkeypatch, tmp_path):
    engines(monkeypatch, ["Put me through to the front desk please"])
    ask = tone_wav(tmp_path / "ask.wav")

    async def scenario(browser):
        browser.peer.say(ask)  # the scripted STT hears the line above; the agent calls transfer_call
        await browser.until_ended()
        return browser

    browser = a_call(agent, scenario)
    call_id = browser.call_id
    briefing = "Hello, this is Receptionist, the virtual assistant. I have a caller for you. A billing question."
    assert browser.of_type("transfer") == [
        {
            "type": "transfer",
            "call_id": call_id,
            "transfer_type": "warm",
            "target": "ext:1001",
            "briefing": briefing,
            "message": NO_PHONE_NETWORK + "ext:1001. ext:1001 would first hear the agent's briefing.",
        }
    ]
    assert browser.seen[-1] == {"type": "ended", "call_id": call_id, "end_reason": "transferred"}
    kinds = stored_events(call_id)
    for expected in ("call.transfer_requested", "call.held", "call.transferred", "call.ended"):
        assert expected in kinds
    assert kinds.index("call.held") < kinds.index("call.transferred")
    assert payload_of(call_id, "call.transfer_requested")["reason"] == "agent_decision"
    assert payload_of(call_id, "call.transferred") == {"call_id": call_id, "transferred_to": "ext:1001"}
    assert Call.objects.dangerously_unscoped().get(pk=call_id).end_reason == "transferred"


@pytest.mark.slow  # the caller speaks again after the refusal: seconds
def test_a_conference_is_refused_cleanly_and_the_conversation_goes_on(agent, monkeypatch, tmp_path):
    engines(monkeypatch, ["Are you still there"])
    again = tone_wav(tmp_path / "again.wav")

    async def scenario(browser):
        response = await api(
            agent.tenant, "post", f"/v1/calls/{browser.call_id}/transfer", {"type": "conference", "target": "ext:1003"}
        )
        assert response.status_code == 202, response.content
        failed = await browser.until(lambda m: m.get("event") == "call.transfer_failed")
        await wait_for_call(pk=browser.call_id, status="conversing")
        browser.peer.say(again)  # the agent still answers
        await browser.until(
            lambda m: m.get("event") == "transcript.turn" and m["data"]["text"] == "Sure, I can help with that."
        )
        await browser.socket.send_json_to({"type": "hangup"})
        await browser.until_ended()
        return browser, failed

    browser, failed = a_call(agent, scenario)
    call_id = browser.call_id
    reason = "A browser test call cannot dial ext:1003: conferences and consult calls need a phone line"
    assert failed["data"] == {"transfer_type": "conference", "target": "ext:1003", "reason": reason}
    assert browser.of_type("transfer") == [] and browser.of_type("hangup") == []
    assert browser.seen[-1] == {"type": "ended", "call_id": call_id, "end_reason": "caller_hangup"}
    kinds = stored_events(call_id)
    assert kinds.index("call.transfer_requested") < kinds.index("call.transfer_failed")
    assert "call.transferred" not in kinds and "call.merged" not in kinds


def test_the_browsers_hang_up_ends_the_call_through_the_carrier(agent, monkeypatch):
    reported = []
    original = BrowserCarrier.caller_hung_up

    async def caller_hung_up(self):
        reported.append(self.external_id)
        await original(self)

    monkeypatch.setattr(BrowserCarrier, "caller_hung_up", caller_hung_up)

    async def scenario(browser):
        await browser.socket.send_json_to({"type": "hangup"})
        await browser.until_ended()
        return browser

    browser = a_call(agent, scenario)
    assert reported == [f"browser:{browser.call_id}"]
    assert browser.seen[-1] == {"type": "ended", "call_id": browser.call_id, "end_reason": "caller_hangup"}
    assert browser.of_type("hangup") == []  # the browser hung up itself: nothing to tell it
    assert Call.objects.dangerously_unscoped().get(pk=browser.call_id).end_reason == "caller_hangup"


def test_a_hang_up_the_channel_layer_cannot_carry_still_ends_the_call(agent, monkeypatch):
    async def unreachable(self):
        raise ConnectionError("the channel layer is down")

    monkeypatch.setattr(BrowserCarrier, "caller_hung_up", unreachable)

    async def scenario(browser):
        await browser.socket.send_json_to({"type": "hangup"})
        await browser.until_ended()
        return browser

    browser = a_call(agent, scenario)
    assert browser.seen[-1] == {"type": "ended", "call_id": browser.call_id, "end_reason": "caller_hangup"}


def test_a_supervisors_hang_up_through_the_api_tells_the_browser_then_ends(agent):
    async def scenario(browser):
        response = await api(agent.tenant, "post", f"/v1/calls/{browser.call_id}/end")
        assert response.status_code == 202, response.content
        await browser.until_ended()
        return browser

    browser = a_call(agent, scenario)
    call_id = browser.call_id
    assert [m["type"] for m in browser.seen if m["type"] != "event"] == ["hangup", "ended"]
    assert browser.of_type("hangup") == [{"type": "hangup", "call_id": call_id}]
    assert browser.seen[-1] == {"type": "ended", "call_id": call_id, "end_reason": "agent_hangup"}
    assert Call.objects.dangerously_unscoped().get(pk=call_id).end_reason == "agent_hangup"


def test_another_tenants_key_cannot_transfer_or_hang_up_the_test_call(agent, other_tenant):
    async def scenario(browser):
        path = f"/v1/calls/{browser.call_id}"
        transfer = await api(other_tenant, "post", f"{path}/transfer", {"type": "blind", "target": "+15550002222"})
        end = await api(other_tenant, "post", f"{path}/end")
        status = (await wait_for_call(pk=browser.call_id)).status
        await browser.socket.send_json_to({"type": "hangup"})
        await browser.until_ended()
        return browser, transfer, end, status

    browser, transfer, end, status = a_call(agent, scenario)
    assert (transfer.status_code, transfer.json()["error"]["code"]) == (404, "resource_missing")
    assert (end.status_code, end.json()["error"]["code"]) == (404, "resource_missing")
    assert status == "conversing"  # untouched: still talking to its agent
    assert browser.of_type("transfer") == [] and browser.of_type("hangup") == []
    assert browser.seen[-1] == {"type": "ended", "call_id": browser.call_id, "end_reason": "caller_hangup"}
    kinds = stored_events(browser.call_id)
    assert "call.transfer_requested" not in kinds
    call = Call.objects.dangerously_unscoped().get(pk=browser.call_id)
    assert call.end_reason == "caller_hangup"


# --- the carrier on its own -----------------------------------------------------------------------------


def a_carrier(sent: list) -> BrowserCarrier:
    async def send(message: dict) -> None:
        sent.append(message)

    call = BridgeCall(
        call_id="c1", tenant_id="t1", agent_id="a1", agent_name="Receptionist", direction="inbound",
        room_name="call-t1-c1", external_call_id="browser:c1",
    )  # fmt: skip
    return BrowserCarrier(call, offer="v=0", send=send)


def test_the_browser_carrier_dials_e164_and_extensions_like_the_others_and_refuses_the_rest():
    carrier = a_carrier([])
    assert carrier.dial_string("+15550002222") == "+15550002222"
    assert carrier.dial_string("ext:1001") == "ext:1001"
    for bad in ("15550002222", "ext:", "ext:12a", "+1555\n", "Front desk", ""):
        with pytest.raises(ValueError):
            carrier.dial_string(bad)


def test_the_browser_carrier_refuses_dialling_conferences_and_hold_and_touches_only_its_own_call():
    sent: list = []
    carrier = a_carrier(sent)

    async def refusals():
        codes = []
        for attempt in (
            carrier.create_call(dial_string="ext:1003", caller_id="", leg=None),
            carrier.merge("browser:c1", "consult"),
            carrier.warm_transfer("browser:c1", "consult"),
            carrier.hold("browser:c1"),
            carrier.blind_transfer("browser:other", "+15550002222"),
            carrier.hangup("browser:other"),
        ):
            with pytest.raises(BrowserCallError) as refused:
                await attempt
            codes.append(refused.value.code)
        await carrier.resume("browser:c1")  # nothing was held
        await carrier.hangup("browser:c1")  # never answered: nothing to tell the browser
        return codes

    codes = async_to_sync(refusals)()
    assert codes == [
        "browser_cannot_dial", "browser_cannot_dial", "browser_cannot_dial", "browser_cannot_hold",
        "browser_unknown_leg", "browser_unknown_leg",
    ]  # fmt: skip
    assert sent == []
