"""The TTS node: Chatterbox (or offline piper) behind a small HTTP API, run on the GPU host.

It imports nothing from the platform; the platform reaches it over HTTP only (the API: docs/tts-node.md).
"""
