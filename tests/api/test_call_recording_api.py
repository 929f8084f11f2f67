"""The call object's recording_url and analysis, and GET /v1/calls/{id}/recording with HTTP Range."""

import uuid

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from core.http_range import RangeNotSatisfiable, byte_range
from tenants.models import Membership
from tests import factories
from tests.api.conftest import key_client
from tests.api.test_errors import assert_error

pytestmark = pytest.mark.django_db

# Longer than FileResponse's 4 KiB block, with every byte distinguishable by position.
AUDIO = b"RIFF" + bytes(range(256)) * 40


@pytest.fixture
def call(tenant):
    return factories.CallFactory(tenant=tenant)


@pytest.fixture
def recording(call):
    return factories.RecordingFactory(call=call, format="wav", file=ContentFile(AUDIO, name="call.wav"))


def url(call) -> str:
    return f"/v1/calls/{call.pk}/recording"


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_the_call_object_links_its_recording_with_an_absolute_url(api_client, call, recording):
    expected = f"http://testserver/v1/calls/{call.pk}/recording"
    assert api_client.get(f"/v1/calls/{call.pk}").json()["recording_url"] == expected
    assert api_client.get("/v1/calls").json()["results"][0]["recording_url"] == expected


def test_a_call_without_a_recording_has_a_null_recording_url(api_client, call):
    factories.RecordingFactory(call=factories.CallFactory(tenant=call.tenant))  # another call's recording
    assert api_client.get(f"/v1/calls/{call.pk}").json()["recording_url"] is None
    listed = {row["id"]: row["recording_url"] for row in api_client.get("/v1/calls").json()["results"]}
    assert listed[str(call.pk)] is None


def test_a_recording_row_without_a_file_is_not_linked(api_client, call):
    factories.RecordingFactory(call=call, file="")
    assert api_client.get(f"/v1/calls/{call.pk}").json()["recording_url"] is None
    assert_error(api_client.get(url(call)), 404, "recording_missing")


def test_the_call_object_carries_its_analysis_talk_stats_and_processing_time(api_client, call):
    analysis = {"summary": "Booked a cleaning.", "outcome": "appointment_booked", "sentiment": "positive"}
    talk_stats = {"turns": 4, "interruptions": 1, "talk_seconds": {"agent": 31.5, "caller": 22.0}}
    call.analysis, call.talk_stats = analysis, talk_stats
    call.processed_at = call.started_at
    call.save()
    detail = api_client.get(f"/v1/calls/{call.pk}").json()
    listed = api_client.get("/v1/calls").json()["results"][0]
    for data in (detail, listed):
        assert (data["analysis"], data["talk_stats"]) == (analysis, talk_stats)
        assert data["processed_at"] == call.started_at.isoformat().replace("+00:00", "Z")


def test_an_unprocessed_call_has_empty_analysis_and_no_processing_time(api_client, call):
    data = api_client.get(f"/v1/calls/{call.pk}").json()
    assert (data["analysis"], data["talk_stats"], data["processed_at"]) == ({}, {}, None)


def test_the_recording_downloads_whole_with_its_type_and_length(api_client, call, recording):
    response = api_client.get(url(call))
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert response["Content-Length"] == str(len(AUDIO))
    assert response["Accept-Ranges"] == "bytes"
    assert body(response) == AUDIO


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=4-259", 4, 259),
        ("bytes=5000-9000", 5000, 9000),  # across FileResponse's 4 KiB blocks
        ("bytes=10000-", 10000, len(AUDIO) - 1),
        ("bytes=-100", len(AUDIO) - 100, len(AUDIO) - 1),
        ("bytes=100-99999999", 100, len(AUDIO) - 1),  # the end is clipped to the file
        ("bytes=-99999999", 0, len(AUDIO) - 1),  # a suffix longer than the file is all of it
        ("BYTES=1-2", 1, 2),  # the unit is case-insensitive
    ],
)
def test_a_byte_range_is_206_with_exactly_those_bytes(api_client, call, recording, header, first, last):
    response = api_client.get(url(call), HTTP_RANGE=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/{len(AUDIO)}"
    assert response["Content-Length"] == str(last - first + 1)
    assert response["Content-Type"] == "audio/wav"
    assert response["Accept-Ranges"] == "bytes"
    assert body(response) == AUDIO[first : last + 1]


@pytest.mark.parametrize(
    "header", [f"bytes={len(AUDIO)}-", "bytes=999999-1000000", "bytes=-0", "bytes=" + "9" * 5000 + "-"]
)
def test_a_range_past_the_end_is_a_416_in_the_error_shape(api_client, call, recording, header):
    response = api_client.get(url(call), HTTP_RANGE=header)
    error = assert_error(response, 416, "range_not_satisfiable")
    assert response["Content-Range"] == f"bytes */{len(AUDIO)}"
    assert str(len(AUDIO)) in error["message"]


@pytest.mark.parametrize(
    "header",
    ["bytes=0-1,5-6", "items=0-5", "bytes=5-2", "bytes=-", "bytes=a-b", "bytes 0-5", "bytes=1-2-3", "bytes=\x00"],
)
def test_a_range_the_server_does_not_serve_gets_the_whole_file(api_client, call, recording, header):
    response = api_client.get(url(call), HTTP_RANGE=header)
    assert response.status_code == 200
    assert body(response) == AUDIO


def test_if_range_with_the_current_etag_gets_the_range_and_a_stale_one_the_whole_file(api_client, call, recording):
    etag = api_client.get(url(call))["ETag"]
    current = api_client.get(url(call), HTTP_RANGE="bytes=0-3", HTTP_IF_RANGE=etag)
    assert (current.status_code, body(current)) == (206, b"RIFF")
    stale = api_client.get(url(call), HTTP_RANGE="bytes=0-3", HTTP_IF_RANGE='"an-older-version"')
    assert (stale.status_code, body(stale)) == (200, AUDIO)


def test_a_new_recording_file_changes_the_etag(api_client, call, recording):
    before = api_client.get(url(call))["ETag"]
    recording.file.save("again.wav", ContentFile(AUDIO + b"more"), save=True)
    assert api_client.get(url(call))["ETag"] != before


def test_a_player_asking_for_audio_only_is_served(api_client, call, recording):
    response = api_client.get(url(call), HTTP_ACCEPT="audio/wav", HTTP_RANGE="bytes=0-3")
    assert (response.status_code, body(response)) == (206, b"RIFF")


def test_an_mp3_recording_has_its_content_type(api_client, call):
    factories.RecordingFactory(call=call, format="mp3", file=ContentFile(b"ID3", name="call.mp3"))
    assert api_client.get(url(call))["Content-Type"] == "audio/mpeg"


def test_a_call_without_a_recording_is_a_404_in_the_error_shape(api_client, call):
    error = assert_error(api_client.get(url(call)), 404, "recording_missing")
    assert error["message"] == "This call has no recording."


def test_a_recording_whose_file_is_gone_is_a_404(api_client, call, recording):
    default_storage.delete(recording.file.name)
    assert_error(api_client.get(url(call)), 404, "recording_missing")


def test_another_tenants_recording_is_a_404_like_a_missing_call(api_client, other_tenant):
    theirs = factories.RecordingFactory(call=factories.CallFactory(tenant=other_tenant))
    foreign = api_client.get(url(theirs.call), HTTP_RANGE="bytes=0-1")
    missing = api_client.get(f"/v1/calls/{uuid.uuid4()}/recording")
    assert_error(foreign, 404, "resource_missing")
    assert foreign.json() == missing.json()


def test_a_read_only_key_and_a_viewer_session_may_download(tenant, call, recording):
    viewer = factories.UserFactory()
    Membership.objects.create(tenant=tenant, user=viewer, role=Membership.Role.VIEWER)
    session = Client()
    session.force_login(viewer)
    for client in (key_client(tenant, ["read"]), session):
        response = client.get(url(call), HTTP_RANGE="bytes=0-3")
        assert (response.status_code, body(response)) == (206, b"RIFF")


def test_the_download_needs_credentials(call, recording):
    assert_error(Client().get(url(call)), 401, "not_authenticated")


def test_head_gives_the_length_without_the_audio(api_client, call, recording):
    response = api_client.head(url(call))
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(AUDIO))
    assert b"".join(response.streaming_content) == b""


# --- the Range rules themselves (core.http_range.byte_range) ------------------------------------


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("", 10, None),
        ("bytes=0-", 10, (0, 9)),
        ("bytes=0009-0009", 10, (9, 9)),  # leading zeros are digits like any other
        ("  bytes=2-3  ", 10, (2, 3)),
        ("bytes=-10", 10, (0, 9)),
        ("bytes=-1", 1, (0, 0)),
        ("bytes=3-2", 10, None),  # last before first: an invalid range, ignored
        ("bytes=0-1,3-4", 10, None),  # several ranges: served whole
        ("bytes=1-" + "9" * 5000, 10, (1, 9)),  # an absurd end is the end of the file
    ],
)
def test_byte_range_reads_one_range_and_ignores_what_it_does_not_serve(header, size, expected):
    assert byte_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=0-", 0), ("bytes=-5", 0), ("bytes=10-", 10), ("bytes=-0", 10)])
def test_byte_range_past_the_end_or_of_an_empty_file_is_not_satisfiable(header, size):
    with pytest.raises(RangeNotSatisfiable) as raised:
        byte_range(header, size)
    assert raised.value.headers["Content-Range"] == f"bytes */{size}"
