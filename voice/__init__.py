"""The realtime agent session (the voice pipeline of one call) and its provider plug-ins.

`session.py` builds and runs a call's session; `providers/` builds its STT, LLM, TTS and VAD.
"""
