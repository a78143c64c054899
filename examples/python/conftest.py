"""pytest fixtures: a real `mpmeter serve` for the test session, seeded with
seed.yaml, and a boto3 client configured for it. Copy this file next to your
tests; the binary is $MPMETER_BIN or `mpmeter` on PATH
(go install github.com/mpmeter/mpmeter/cmd/mpmeter@latest)."""

import os
import re
import shutil
import subprocess
import time
import urllib.request

import boto3
import pytest

SEED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seed.yaml")
SELLER_KEY, SELLER_SECRET = "AKIAMYSELLERKEY00001", "my-seller-secret"  # from seed.yaml


@pytest.fixture(scope="session")
def mpmeter_endpoint(tmp_path_factory):
    """Starts mpmeter on a free port (port 0: the server picks one and
    prints it) and yields its endpoint URL; stops it after the session."""
    binary = os.environ.get("MPMETER_BIN") or shutil.which("mpmeter")
    if not binary:
        pytest.fail("mpmeter not found: set MPMETER_BIN or put mpmeter on PATH")
    db = tmp_path_factory.mktemp("mpmeter") / "mpmeter.db"
    proc = subprocess.Popen(
        [binary, "serve", "--seed", SEED, "--db", str(db), "--listen", "127.0.0.1:0", "--log-level", "warn"],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()  # "mpmeter: serving ... at http://127.0.0.1:PORT"
        m = re.search(r"(http://\S+)", line)
        if not m:
            pytest.fail(f"mpmeter did not start (exit {proc.poll()}): {line!r}")
        endpoint = m.group(1)
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(endpoint + "/healthz", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        proc.stdout.close()


@pytest.fixture
def metering(mpmeter_endpoint):
    """A boto3 meteringmarketplace client for mpmeter, as the seller."""
    return boto3.client("meteringmarketplace", endpoint_url=mpmeter_endpoint, region_name="us-east-1",
                        aws_access_key_id=SELLER_KEY, aws_secret_access_key=SELLER_SECRET)
