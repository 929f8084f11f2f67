"""A voice preview runs in a web request's worker thread: it must not need a livekit plugin registered there.

livekit-agents refuses to register a plugin off the main thread. Under Daphne or a threaded WSGI server a
sync view (the Voices page's preview) runs in a worker thread, so the engines package must not import the
plugin modules until a session builds the engines that need them (on the main thread).
"""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import os, threading
os.environ["DJANGO_SETTINGS_MODULE"] = "voiceapp.settings_test"
import django
django.setup()
errors = []

def preview():
    try:
        from voice import engines
        engine = engines.build_tts({"provider": "offline"}, voice=None, secrets={})
        print("engine", type(engine).__name__)
    except Exception as exc:
        errors.append(repr(exc))

thread = threading.Thread(target=preview)
thread.start()
thread.join()
print("errors", errors)
"""


def test_building_the_offline_tts_in_a_worker_thread_needs_no_plugin_registration():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "errors []" in done.stdout, done.stdout + done.stderr[-3000:]
    assert "engine OfflinePiperTTS" in done.stdout
