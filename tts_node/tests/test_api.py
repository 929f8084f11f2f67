"""The node's HTTP API on the offline engine: every endpoint, streaming, refusals, a full queue."""

import io
import struct
import threading
import time

import numpy as np
import pytest
import soundfile

from tts_node.tests.conftest import LiveNode, audio_file, piper_settings

SEED_BODY = {
    "text": "I'd be happy to help you with that [chuckle]. Let me check your account.",
    "voice_id": "default_female_1",
    "options": {"exaggeration": 0.5, "cfg_weight": 0.5, "streaming": True},
}
LONG_TEXT = " ".join(f"This is sentence number {n} of a long answer." for n in range(1, 13))


def _wav(body: bytes) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(io.BytesIO(body), dtype="int16")
    return samples, rate


def test_health_reports_model_device_and_memory(client):
    body = client.get("/health", headers={"Authorization": ""}).json()
    assert body["status"] == "ok"
    assert body["model_loaded"] is True
    assert (body["engine"], body["model"], body["device"]) == ("piper", "piper-en_US-joe-medium", "cpu")
    assert body["gpu_memory"] is None  # no accelerator on the CPU engine
    assert body["sample_rate"] == 22050
    assert body["capacity"] == 200


def test_synthesize_returns_a_whole_wav(client):
    response = client.post("/synthesize", json={"text": "Your appointment is confirmed for Tuesday."})
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    body = response.content
    assert struct.unpack("<I", body[40:44])[0] == len(body) - 44  # a true length, not a placeholder
    samples, rate = _wav(body)
    assert rate == 22050
    assert len(samples) / rate > 1.0
    assert np.abs(samples).max() > 1000


def test_seed_request_streams_chunked_wav(client):
    with client.stream("POST", "/synthesize", json=SEED_BODY) as response:
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        body = response.read()
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE"
    assert struct.unpack("<I", body[40:44])[0] == 0xFFFFFFFF  # streaming: length unknown up front
    assert struct.unpack("<I", body[24:28])[0] == 22050
    pcm = np.frombuffer(body[44:], dtype="<i2")
    assert len(pcm) / 22050 > 2.0


def test_stream_sends_audio_before_generation_ends(node, client):
    finished: list[float] = []
    done = threading.Event()
    observe = node.node.scheduler.on_job_done

    def on_job_done(job):
        finished.append(time.monotonic())
        done.set()
        return observe(job)

    node.node.scheduler.on_job_done = on_job_done
    try:
        with client.stream("POST", "/synthesize/stream", json={**SEED_BODY, "text": LONG_TEXT}) as response:
            chunks = response.iter_raw()
            first = next(chunks)
            first_at = time.monotonic()
            rest = b"".join(chunks)
        # The scheduler notes the job done after its last chunk went out: the body may arrive first.
        assert done.wait(30), "the node never finished the job"
    finally:
        node.node.scheduler.on_job_done = observe
    assert first[:4] == b"RIFF"
    (done_at,) = finished
    assert first_at < done_at  # the first chunk was in our hands while the node was still generating
    assert (len(first) + len(rest) - 44) / 2 / 22050 > 8.0


def test_raw_pcm_when_asked(client):
    response = client.post("/synthesize/stream", json=SEED_BODY, headers={"Accept": "audio/pcm"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("audio/pcm")
    assert response.headers["x-sample-rate"] == "22050"
    assert response.content[:4] != b"RIFF"
    assert len(response.content) % 2 == 0 and len(response.content) > 22050


def test_tags_alone_are_a_short_pause(client):
    samples, rate = _wav(client.post("/synthesize", json={"text": "[laugh]"}).content)
    assert len(samples) == rate // 10
    assert not samples.any()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"text": ""}, 400, "text_empty"),
        ({"text": "   "}, 400, "text_empty"),
        ({"voice_id": "default"}, 400, "text_empty"),
        ({"text": "x" * 2001}, 400, "text_too_long"),
        ({"text": "Hello.", "voice_id": "voice_missing"}, 404, "voice_not_found"),
        ({"text": "Hello.", "voice_id": "../../etc"}, 404, "voice_not_found"),
        ({"text": "Hello.", "options": {"exaggeration": 5}}, 400, "invalid_option"),
        ({"text": "Hello.", "options": {"cfg_weight": "high"}}, 400, "invalid_option"),
        ({"text": "Hello.", "options": {"streaming": "yes"}}, 400, "invalid_option"),
        (["not", "an", "object"], 400, "invalid_json"),
    ],
)
@pytest.mark.parametrize("path", ["/synthesize", "/synthesize/stream"])
def test_bad_synthesis_requests_are_refused_clearly(client, path, body, status, code):
    response = client.post(path, json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]


def test_body_that_is_not_json(client):
    response = client.post("/synthesize", content=b"text=hello", headers={"Content-Type": "text/plain"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_token_is_required_except_for_probes(node, token):
    with node.client(token=token) as anonymous:
        for method, path in [
            ("POST", "/synthesize"),
            ("POST", "/synthesize/stream"),
            ("GET", "/voices"),
            ("POST", "/voices"),
        ]:
            response = anonymous.request(method, path, json={"text": "Hi."})
            assert response.status_code == 401, path
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
        assert anonymous.get("/health").status_code == 200
        assert anonymous.get("/metrics").status_code == 200


def test_voice_upload_list_detail_synthesize_delete(client, tmp_path):
    wav = audio_file(tmp_path / "ref.wav", 6.0)
    created = client.post("/voices", files={"reference_audio": ("ref.wav", wav, "audio/wav")}, data={"name": "Ada"})
    assert created.status_code == 201, created.text
    voice = created.json()
    assert voice["id"].startswith("voice_")
    assert (voice["name"], voice["kind"], voice["duration_s"], voice["sample_rate"]) == ("Ada", "cloned", 6.0, 24000)
    assert voice["cloned_by_engine"] is False  # piper speaks it with its bundled voice

    listed = client.get("/voices").json()["voices"]
    assert [v["id"] for v in listed] == ["default", "default_female_1", voice["id"]]
    assert client.get(f"/voices/{voice['id']}").json() == voice

    spoken = client.post("/synthesize", json={"text": "Hello from Ada.", "voice_id": voice["id"]})
    assert spoken.status_code == 200 and len(spoken.content) > 44 + 22050

    assert client.delete(f"/voices/{voice['id']}").status_code == 204
    assert client.get(f"/voices/{voice['id']}").status_code == 404
    assert client.post("/synthesize", json={"text": "Hi.", "voice_id": voice["id"]}).status_code == 404


def test_flac_reference_is_accepted(client, tmp_path):
    flac = audio_file(tmp_path / "ref.flac", 7.5, rate=44100, fmt="FLAC")
    created = client.post("/voices", files={"reference_audio": ("ref.flac", flac, "audio/flac")})
    assert created.status_code == 201
    assert created.json()["sample_rate"] == 44100


def _silent_wav(path):
    soundfile.write(path, np.zeros(24000 * 6, dtype=np.float32), 24000)
    return path.read_bytes()


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda p: audio_file(p, 2.0), "reference_audio_length"),
        (lambda p: audio_file(p, 90.0, rate=16000), "reference_audio_length"),
        (lambda p: audio_file(p, 6.0, rate=8000), "reference_audio_sample_rate"),
        (lambda p: b"definitely not audio" * 100, "reference_audio_unreadable"),
        (lambda p: b"", "reference_audio_empty"),
        (_silent_wav, "reference_audio_silent"),
    ],
    ids=["too-short", "too-long", "8-khz", "garbage", "empty", "silent"],
)
def test_bad_reference_audio_is_refused_and_not_stored(node, client, tmp_path, make, code):
    before = client.get("/voices").json()["voices"]
    response = client.post("/voices", files={"reference_audio": ("ref.wav", make(tmp_path / "ref.wav"), "audio/wav")})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert client.get("/voices").json()["voices"] == before


def test_upload_needs_a_multipart_file(client):
    not_multipart = client.post("/voices", json={"reference_audio": "abc"})
    assert (not_multipart.status_code, not_multipart.json()["error"]["code"]) == (400, "multipart_required")
    no_file = client.post("/voices", data={"name": "x"}, files={"other": ("a.wav", b"123", "audio/wav")})
    assert (no_file.status_code, no_file.json()["error"]["code"]) == (400, "reference_audio_missing")


def test_oversized_upload_is_413(tmp_path):
    with LiveNode(piper_settings(tmp_path, reference_max_bytes=100_000)) as live, live.client() as c:
        big = audio_file(tmp_path / "big.wav", 6.0, rate=48000)
        response = c.post("/voices", files={"reference_audio": ("big.wav", big, "audio/wav")})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "reference_audio_too_large"


def test_unknown_route_is_a_json_404(client):
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_metrics_count_requests_latency_and_queue(client):
    client.post("/synthesize", json={"text": "Counting this one."})
    text = client.get("/metrics").text
    assert 'tts_requests_total{endpoint="/synthesize",status="200"}' in text
    assert 'tts_requests_total{endpoint="/synthesize",status="400"}' in text
    count = next(line for line in text.splitlines() if line.startswith("tts_time_to_first_audio_seconds_count"))
    assert float(count.split()[-1]) >= 1
    assert "tts_real_time_factor_bucket" in text
    assert "tts_queue_depth 0.0" in text
    assert "# TYPE tts_gpu_memory_bytes gauge" in text


def test_full_queue_answers_503_with_retry_after(tmp_path):
    settings = piper_settings(tmp_path, max_active=1, queue_size=1, retry_after_s=3)
    with LiveNode(settings) as live, live.client() as c:
        release = threading.Event()
        live.node.scheduler.call(release.wait)  # hold the inference thread: nothing admitted can finish
        results: list[int] = []
        first = threading.Thread(
            target=lambda: results.append(c.post("/synthesize", json={"text": "First."}).status_code)
        )
        second = threading.Thread(
            target=lambda: results.append(c.post("/synthesize", json={"text": "Second."}).status_code)
        )
        first.start()
        second.start()
        deadline = time.monotonic() + 30
        while live.node.scheduler.active + live.node.scheduler.waiting < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        with live.client() as other:
            refused = other.post("/synthesize", json={"text": "One too many."})
        release.set()
        first.join()
        second.join()
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "3"
    assert refused.json()["error"]["code"] == "overloaded"
    assert results == [200, 200]


def test_a_client_that_leaves_frees_its_slot(node, client):
    with client.stream("POST", "/synthesize/stream", json={**SEED_BODY, "text": LONG_TEXT}) as response:
        next(response.iter_raw())
    deadline = time.monotonic() + 30
    while node.node.scheduler.active and time.monotonic() < deadline:
        time.sleep(0.02)
    assert node.node.scheduler.active == 0
