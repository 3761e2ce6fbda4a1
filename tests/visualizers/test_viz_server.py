"""A real TensorBoard server on loopback serves the filter grid written by FilterGridHandler."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from PIL import Image

START_TIMEOUT_S = 60
REQUEST_TIMEOUT_S = 5

# Loopback only: never go through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    with _OPENER.open(url, timeout=REQUEST_TIMEOUT_S) as response:
        assert response.status == 200
        return response.read()


@pytest.fixture()
def tensorboard_url(tb_runs):
    port = _free_port()
    cmd = [
        sys.executable, "-m", "tensorboard.main", "--logdir", str(tb_runs["logdir"]), "--host", "127.0.0.1",
        "--port", str(port), "--load_fast", "false",
    ]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"tensorboard exited with {server.returncode}: {server.stderr.read().decode()[-2000:]}")
            try:
                tags = json.loads(_get(f"{base}/data/plugin/images/tags"))
                if "filters/1" in tags.get("fc", {}):
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"tensorboard did not serve the images within {START_TIMEOUT_S} s")
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        server.stderr.close()


def test_tensorboard_serves_the_filter_grid_as_a_png(tensorboard_url):
    tags = json.loads(_get(f"{tensorboard_url}/data/plugin/images/tags"))
    assert "filters/1" in tags["fc"] and "filters/0" in tags["conv"]
    query = urllib.parse.urlencode({"run": "fc", "tag": "filters/1"})
    images = json.loads(_get(f"{tensorboard_url}/data/plugin/images/images?{query}"))
    assert [entry["step"] for entry in images] == [1, 2]
    png = _get(f"{tensorboard_url}/data/plugin/images/individualImage?{images[-1]['query']}")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (101, 101)  # 16 receptive fields of 8x8 (shown 24x24) on a 4x4 grid, padding 1
    image.load()
    assert image.getextrema()[0] == (0, 255)  # per-filter normalisation spans the full range
