"""What the phone leg accepts in an SDP offer, checked before a peer connection is built for it.

aiortc applies whatever it can negotiate: a video-only offer or a G.722-only offer would give a
working connection that carries no call audio. The leg takes Opus (48 kHz, what the PBX and
browsers send) and falls back to G.711 (PCMU, PCMA), the codecs every phone network speaks; the
checks here turn everything else into one clear `InvalidOffer` before any transport is opened.
"""

import re

from aiortc import RTCRtpSender
from aiortc import sdp as aiortc_sdp
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from core.errors import ApplicationError

# In order of preference: Opus first, G.711 only when the offer has nothing better.
PREFERRED_CODECS = ("audio/opus", "audio/PCMU", "audio/PCMA")
# RFC 3551 static payload types may come without an a=rtpmap line (terse SIP-style offers);
# aiortc only knows a codec from its rtpmap.
STATIC_RTPMAPS = {0: "PCMU/8000", 8: "PCMA/8000"}


class InvalidOffer(ApplicationError):
    """The SDP cannot carry the call's audio: unparsable, no audio section, or no codec we speak."""

    code = "invalid_sdp"


def codec_preferences() -> list[RTCRtpCodecCapability]:
    """aiortc's capabilities for the codecs we accept, best first (for `setCodecPreferences`)."""
    available = {codec.mimeType.lower(): codec for codec in RTCRtpSender.getCapabilities("audio").codecs}
    return [available[name.lower()] for name in PREFERRED_CODECS if name.lower() in available]


def with_static_rtpmaps(sdp: str) -> str:
    """The SDP with a=rtpmap lines added for static G.711 payload types that lack one."""
    sections = re.split(r"(?m)^(?=m=)", sdp)
    return "".join(_complete_section(section) for section in sections)


def _complete_section(section: str) -> str:
    match = re.match(r"m=audio \d+ \S+ ([0-9 ]+)", section)
    if match is None:
        return section
    newline = "\r\n" if "\r\n" in section else "\n"
    missing = [
        f"a=rtpmap:{pt} {STATIC_RTPMAPS[pt]}"
        for pt in (int(x) for x in match.group(1).split())
        if pt in STATIC_RTPMAPS and not re.search(rf"(?m)^a=rtpmap:{pt}\s", section)
    ]
    if not missing:
        return section
    body = section if section.endswith(newline) else section + newline
    return body + newline.join(missing) + newline


def check_offer(sdp: str) -> aiortc_sdp.SessionDescription:
    """Parse `sdp` and make sure it has an audio section with Opus, PCMU or PCMA; else InvalidOffer."""
    if not isinstance(sdp, str) or not sdp.strip():
        raise InvalidOffer("The SDP offer is empty.")
    try:
        description = aiortc_sdp.SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser asserts and indexes its way through: any failure is bad input
        raise InvalidOffer("The SDP offer could not be parsed.") from exc
    audio = [media for media in description.media if media.kind == "audio"]
    if not audio:
        kinds = ", ".join(sorted({media.kind for media in description.media})) or "none"
        raise InvalidOffer(f"The SDP offer has no audio section (media: {kinds}).")
    wanted = {name.lower() for name in PREFERRED_CODECS}
    offered = {codec.mimeType.lower() for media in audio for codec in media.rtp.codecs}
    if not offered & wanted:
        names = ", ".join(sorted(name.split("/")[1] for name in offered)) or "none"
        raise InvalidOffer(f"The SDP offer has no codec we support (offered: {names}; we take Opus, PCMU, PCMA).")
    if not all(media.dtls and media.dtls.fingerprints for media in audio):
        raise InvalidOffer("The SDP offer has no DTLS fingerprint (WebRTC media is DTLS-SRTP).")
    return description


def answered_codec(answer_sdp: str, *, mid: str | None) -> str | None:
    """The codec the answer settled on for the audio section `mid` (its first codec): "opus", "PCMU"..."""
    for media in aiortc_sdp.SessionDescription.parse(answer_sdp).media:
        if media.kind == "audio" and media.rtp.muxId == mid and media.rtp.codecs:
            return media.rtp.codecs[0].mimeType.split("/")[1]
    return None
