"""Production start-up refuses development defaults; embedded defaults need no environment."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "x" * 64
CRYPTO_KEY = "k1:" + "A" * 43 + "="


def start_django(tmp_path, **env_overrides) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "SECRET_KEY_FILE", "INTEGRATION_CRYPTO_KEY"}
    }
    env["DJANGO_SETTINGS_MODULE"] = "voiceapp.settings"
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    env.update(env_overrides)
    code = "import django; django.setup(); from django.conf import settings; print('DEBUG', settings.DEBUG)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"DEBUG": "0", "ALLOWED_HOSTS": "voice.example.com"},
            "SECRET_KEY is missing, the embedded development default",
        ),
        ({"DEBUG": "0", "ALLOWED_HOSTS": "voice.example.com", "SECRET_KEY": "short"}, "shorter than 50 characters"),
        (
            {
                "DEBUG": "0",
                "ALLOWED_HOSTS": "voice.example.com",
                "SECRET_KEY": "dev-insecure-embedded-default-do-not-use-in-production",
            },
            "embedded development default",
        ),
        ({"DEBUG": "0", "SECRET_KEY": GOOD_SECRET}, "set ALLOWED_HOSTS"),
        ({"DEBUG": "0", "SECRET_KEY": GOOD_SECRET, "ALLOWED_HOSTS": "x"}, "set INTEGRATION_CRYPTO_KEY"),
        (
            {"DEBUG": "0", "ALLOWED_HOSTS": "x", "SECRET_KEY_FILE": "/nonexistent/secret"},
            "SECRET_KEY_FILE='/nonexistent/secret' cannot be read",
        ),
    ],
)
def test_production_refuses_to_start_on_a_default(tmp_path, overrides, message):
    result = start_django(tmp_path, **overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_production_starts_with_real_settings(tmp_path):
    result = start_django(
        tmp_path,
        DEBUG="0",
        SECRET_KEY=GOOD_SECRET,
        ALLOWED_HOSTS="voice.example.com",
        INTEGRATION_CRYPTO_KEY=CRYPTO_KEY,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "DEBUG False"


def test_secret_key_is_read_from_a_file(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(GOOD_SECRET + "\n")
    result = start_django(
        tmp_path,
        DEBUG="0",
        SECRET_KEY_FILE=str(secret_file),
        ALLOWED_HOSTS="voice.example.com",
        INTEGRATION_CRYPTO_KEY=CRYPTO_KEY,
    )
    assert result.returncode == 0, result.stderr


def test_embedded_defaults_need_no_environment(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CACHES['default']['BACKEND'], "
        "s.CHANNEL_LAYERS['default']['BACKEND'], s.CELERY_TASK_ALWAYS_EAGER, s.DEBUG)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env | {"DJANGO_SETTINGS_MODULE": "voiceapp.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "django.core.cache.backends.locmem.LocMemCache",
        "channels.layers.InMemoryChannelLayer",
        "True",
        "True",
    ]


def test_redis_url_switches_cache_channel_layer_and_broker(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "REDIS_URL": "redis://127.0.0.1:6379/3",
        "DJANGO_SETTINGS_MODULE": "voiceapp.settings",
    }
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.CACHES['default']['BACKEND'], s.CHANNEL_LAYERS['default']['BACKEND'], "
        "s.CELERY_BROKER_URL, s.CELERY_TASK_ALWAYS_EAGER)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.core.cache.backends.redis.RedisCache",
        "channels_redis.core.RedisChannelLayer",
        "redis://127.0.0.1:6379/3",
        "False",
    ]
