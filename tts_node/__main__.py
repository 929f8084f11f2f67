"""`python -m tts_node`: serve the node with uvicorn on TTS_HOST:TTS_PORT."""

import logging
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the operator mounts the weights; never download

import uvicorn

from tts_node.app import create_app
from tts_node.settings import SettingsError, load_settings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"tts_node: {exc}", file=sys.stderr)
        return 2
    if not settings.api_token:
        logging.getLogger("tts_node").warning("TTS_API_TOKEN is empty: the API is open to anyone who can reach it")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
