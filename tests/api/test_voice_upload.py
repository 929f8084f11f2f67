"""POST /v1/voices with `reference_audio`: the platform clones a voice on the real TTS node.

The node runs as its own process (tests/runtime/voice_node.py, offline engine); the platform
validates the upload, forwards it, and stores the node's voice id. Refusals leave nothing behind.
"""

import io
import wave

import httpx
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from agents import services
from agents.models import Voice
from tenants.models import AuditLog
from tests.voice.fakes.base import closed_port_url
from tests.voice.voice_node import TOKEN, start_node

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    process = start_node(tmp_path_factory)
    yield process
    process.stop()


@pytest.fixture
def on_node(settings, node):
    settings.CHATTERBOX_URL = node.url
    settings.CHATTERBOX_API_TOKEN = TOKEN
    return node


def wav_bytes(seconds: float, rate: int = 24000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    samples = (8000 * np.sin(2 * np.pi * 150 * t) * (1 + 0.5 * np.sin(2 * np.pi * 4 * t))).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def _upload(api_client, data: bytes, **fields):
    body = {"name": "Front desk Ada", "reference_audio": SimpleUploadedFile("ada.wav", data, "audio/wav"), **fields}
    return api_client.post("/v1/voices", body, format="multipart", HTTP_X_REQUEST_ID="req-clone")


def _node_voice(node, voice_id: str) -> httpx.Response:
    return httpx.get(f"{node.url}/voices/{voice_id}", headers={"Authorization": f"Bearer {TOKEN}"})


def test_clone_uploads_to_the_node_and_stores_its_id(api_client, tenant, on_node):
    response = _upload(api_client, wav_bytes(6.0), exaggeration="0.7")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["provider"] == "chatterbox"
    assert body["provider_voice_id"].startswith("voice_")
    assert (body["name"], body["exaggeration"], body["scope"]) == ("Front desk Ada", 0.7, "tenant")

    voice = Voice.objects.get(pk=body["id"])
    assert voice.tenant == tenant
    assert voice.reference_audio.read() == wav_bytes(6.0)
    on_node_voice = _node_voice(on_node, body["provider_voice_id"]).json()
    assert (on_node_voice["name"], on_node_voice["duration_s"]) == ("Front desk Ada", 6.0)

    audit = AuditLog.objects.for_tenant(tenant).get(action="voice.create")
    assert audit.request_id == "req-clone"
    assert str(audit.object_id) == body["id"]


def test_audio_the_node_refuses_is_a_400_and_nothing_is_created(api_client, on_node):
    response = _upload(api_client, wav_bytes(2.0))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "reference_audio_length"
    assert error["fields"] == {"reference_audio": ["The reference audio lasts 2.0 s; it must last 5-60 s."]}
    assert not Voice.objects.exists()


@pytest.mark.parametrize(
    ("data", "code"), [(b"", "reference_audio_empty"), (b"ID3\x03 an mp3", "reference_audio_format")]
)
def test_plainly_bad_audio_never_leaves_the_platform(api_client, settings, data, code):
    settings.CHATTERBOX_URL = closed_port_url()  # were it contacted, this would be a 503
    response = _upload(api_client, data)
    assert response.status_code == 400
    assert response.json()["error"]["code"] in (code, "validation_error")  # DRF refuses an empty file itself
    assert not Voice.objects.exists()


def test_node_unreachable_is_a_503_and_nothing_is_created(api_client, settings):
    settings.CHATTERBOX_URL = closed_port_url()
    response = _upload(api_client, wav_bytes(6.0))
    assert response.status_code == 503
    assert response.json()["error"] == {
        "type": "api_error",
        "code": "tts_node_unavailable",
        "message": "The TTS node cannot be reached; try again shortly.",
        "fields": {},
    }
    assert not Voice.objects.exists()
    assert not AuditLog.objects.dangerously_unscoped().filter(action="voice.create").exists()


def test_no_node_configured_is_a_clear_400(api_client, settings):
    settings.CHATTERBOX_URL = ""
    response = _upload(api_client, wav_bytes(6.0))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "voice_cloning_unavailable"


def test_wrong_node_token_is_a_502(api_client, settings, node):
    settings.CHATTERBOX_URL = node.url
    settings.CHATTERBOX_API_TOKEN = "not-the-token"
    response = _upload(api_client, wav_bytes(6.0))
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "tts_node_error"
    assert not Voice.objects.exists()


def test_a_row_that_cannot_be_saved_deletes_the_node_copy(api_client, on_node, monkeypatch):
    uploaded: list[str] = []
    real_upload = services.chatterbox_voices.upload_voice

    def upload(**kwargs):
        uploaded.append(real_upload(**kwargs))
        return uploaded[-1]

    def refuse(**kwargs):
        raise services.ApplicationError("refused", code="voice_exists")

    monkeypatch.setattr(services.chatterbox_voices, "upload_voice", upload)
    monkeypatch.setattr(services, "voice_create", refuse)
    response = _upload(api_client, wav_bytes(6.0))
    assert response.status_code == 400
    assert len(uploaded) == 1
    assert _node_voice(on_node, uploaded[0]).status_code == 404
    assert not Voice.objects.exists()


def test_json_create_still_registers_an_existing_provider_voice(api_client):
    response = api_client.post("/v1/voices", {"name": "V", "provider_voice_id": "default_female_1"}, format="json")
    assert response.status_code == 201
    assert response.json()["provider_voice_id"] == "default_female_1"
