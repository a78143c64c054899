"""Shared helpers for the mpmeter Python end-to-end tests.

A test class starts a real `mpmeter serve --demo` process on a free port with
a fresh SQLite file (``ServerTestCase``), and talks to it with boto3/botocore,
the AWS CLI v1 or raw HTTP. Nothing here needs PyPI: stdlib unittest plus the
installed boto3/botocore.

The binary is $MPMETER_BIN when set (run.sh builds it once and sets it);
otherwise it is built once per test process with `go build` into a temporary
directory.
"""

import atexit
import datetime
import http.client
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SPEC = os.environ.get("MPMETER_SPEC", os.path.join(REPO, "spec"))

# Demo marketplace (mpmetertest/mpmetertest.go, seed/demo.yaml).
REGION = "us-east-1"
SELLER_ACCOUNT = "111122223333"
SELLER_KEY, SELLER_SECRET = "AKIAEXAMPLESELLER001", "seller-secret"
OTHER_SELLER_KEY, OTHER_SELLER_SECRET = "AKIAEXAMPLEOTHER0001", "other-secret"
BUYER_ACCOUNT = "444455556666"
BUYER_KEY, BUYER_SECRET = "AKIAEXAMPLEBUYER0001", "buyer-secret"
EC2_KEY, EC2_SECRET = "AKIAEXAMPLEEC2000001", "ec2-secret"
ECS_KEY, ECS_SECRET = "AKIAEXAMPLEECS000001", "ecs-secret"
EKS_KEY, EKS_SECRET = "AKIAEXAMPLEEKS000001", "eks-secret"
FARGATE_KEY, FARGATE_SECRET = "AKIAEXAMPLEFARGATE01", "fargate-secret"
AGENT_KEY, AGENT_SECRET = "AKIAEXAMPLEAGENT0001", "agent-secret"
# Workloads of the cancelled buyer 123456789012 (its subscriptions to
# exampleami1 and examplecontainer1 are cancelled).
CANCELLED_EC2_KEY, CANCELLED_EC2_SECRET = "AKIAEXAMPLECANCEL001", "cancelled-ec2-secret"
CANCELLED_ECS_KEY, CANCELLED_ECS_SECRET = "AKIAEXAMPLECANCEL002", "cancelled-ecs-secret"

SAAS_PRODUCT = "exampleprod1"
AMI_PRODUCT = "exampleami1"
CONTAINER_PRODUCT = "examplecontainer1"
OTHER_PRODUCT = "otherprod1"

CUSTOMER = "cust-example-1"
CUSTOMER_LICENSE = "arn:aws:license-manager::444455556666:license/l-0123456789abcdef"
CANCELLED_CUSTOMER = "cust-cancelled-1"
CANCELLED_ACCOUNT = "123456789012"

TOKEN = "demo-token-1"
TOKEN_CANCELLED = "demo-token-cancelled"
TOKEN_OTHER = "demo-token-other"
TOKEN_EXPIRED = "demo-token-expired"

SERVICE = "meteringmarketplace"
BANNER = re.compile(r"^mpmeter: serving the AWS Marketplace Metering API at (http://127\.0\.0\.1:\d+)\s*$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)

START_TIMEOUT = float(os.environ.get("MPMETER_START_TIMEOUT", "30"))

_bin_lock = threading.Lock()
_bin_path = None


def mpmeter_bin():
    """The mpmeter binary: $MPMETER_BIN, or one built once for this process."""
    global _bin_path
    with _bin_lock:
        if _bin_path:
            return _bin_path
        env_bin = os.environ.get("MPMETER_BIN")
        if env_bin:
            if not os.access(env_bin, os.X_OK):
                raise RuntimeError("MPMETER_BIN=%s is not an executable file" % env_bin)
            _bin_path = env_bin
            return _bin_path
        d = tempfile.mkdtemp(prefix="mpmeter-py-bin-")
        atexit.register(shutil.rmtree, d, True)
        out = os.path.join(d, "mpmeter")
        proc = subprocess.run(["go", "build", "-o", out, "./cmd/mpmeter"], cwd=REPO,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError("go build ./cmd/mpmeter failed:\n" + proc.stdout + proc.stderr)
        _bin_path = out
        return _bin_path


class Server:
    """One `mpmeter serve` process with its own temporary directory."""

    def __init__(self, *extra_args, demo=True):
        self.dir = tempfile.mkdtemp(prefix="mpmeter-py-")
        self.db = os.path.join(self.dir, "mpmeter.db")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stdout_lines = []
        self.args = [mpmeter_bin(), "serve"]
        if demo:
            self.args.append("--demo")
        self.args += ["--listen", "127.0.0.1:0", "--db", self.db, "--log-level", "warn"]
        self.args += list(extra_args)
        self.proc = None
        self.endpoint = None

    def start(self):
        env = dict(os.environ)
        # Flags may also come from MPMETER_* variables: keep the caller's out.
        for k in list(env):
            if k.startswith("MPMETER_") and k not in ("MPMETER_BIN",):
                del env[k]
        self._stderr = open(self.stderr_path, "wb")
        started = time.monotonic()
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL, env=env, cwd=self.dir)
        lines = queue.Queue()

        def pump():
            # Keep reading stdout for the life of the process so the pipe
            # never fills up.
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace")
                self.stdout_lines.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = started + START_TIMEOUT
        while self.endpoint is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise RuntimeError("mpmeter did not print its banner in %ss; stderr:\n%s" % (START_TIMEOUT, self.stderr()))
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                rc = self.proc.wait()
                raise RuntimeError("mpmeter exited with %s before serving; stdout:\n%s\nstderr:\n%s"
                                   % (rc, "".join(self.stdout_lines), self.stderr()))
            m = BANNER.match(line)
            if m:
                self.endpoint = m.group(1)
        # Poll /healthz until it answers 200.
        last = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.endpoint + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        self.startup_seconds = time.monotonic() - started
                        return self
                    last = r.status
            except Exception as e:  # not up yet
                last = e
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("GET /healthz never answered 200 (last: %r); stderr:\n%s" % (last, self.stderr()))

    @property
    def port(self):
        return int(self.endpoint.rsplit(":", 1)[1])

    def stderr(self):
        try:
            with open(self.stderr_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if getattr(self, "_stderr", None):
            self._stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- clients -----------------------------------------------------------

    def client(self, key=SELLER_KEY, secret=SELLER_SECRET, region=REGION, validate=True):
        """A boto3 meteringmarketplace client with retries off."""
        cfg = Config(retries={"max_attempts": 1}, parameter_validation=validate)
        return boto3.client(SERVICE, endpoint_url=self.endpoint, region_name=region,
                            aws_access_key_id=key, aws_secret_access_key=secret, config=cfg)

    def get(self, path):
        """GET path; returns (status, headers, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.headers, r.read()
        finally:
            conn.close()


def botocore_model():
    return botocore.session.get_session().get_service_model(SERVICE)


def model_has_members(shape_name, *members):
    shape = botocore_model().shape_for(shape_name)
    return all(m in shape.members for m in members)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def hours_ago(h, minutes=0):
    """A timezone-aware UTC time h hours (and minutes) ago, whole seconds."""
    return (now() - datetime.timedelta(hours=h, minutes=minutes)).replace(microsecond=0)


def record(customer, dimension, quantity, ts, **extra):
    r = {"CustomerIdentifier": customer, "Dimension": dimension, "Quantity": quantity, "Timestamp": ts}
    r.update(extra)
    return r


class ServerTestCase(unittest.TestCase):
    """Starts one server for the class (SERVER_ARGS are extra flags)."""

    SERVER_ARGS = ()
    SERVER_DEMO = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = Server(*cls.SERVER_ARGS, demo=cls.SERVER_DEMO).start()
        cls.addClassCleanup(cls.server.stop)

    @classmethod
    def seller(cls, **kw):
        return cls.server.client(SELLER_KEY, SELLER_SECRET, **kw)

    def assertClientError(self, cm_or_exc, code, status=400, message=None):
        """Asserts a botocore ClientError's code, HTTP status, a request id
        and optionally a message substring; returns the message."""
        e = getattr(cm_or_exc, "exception", cm_or_exc)
        self.assertIsInstance(e, ClientError)
        err = e.response.get("Error", {})
        meta = e.response.get("ResponseMetadata", {})
        self.assertEqual(err.get("Code"), code, "error %r (%s)" % (err, meta.get("HTTPStatusCode")))
        self.assertEqual(meta.get("HTTPStatusCode"), status, "%s: HTTP status" % code)
        self.assertRegex(meta.get("RequestId", ""), UUID_RE, "%s: x-amzn-RequestId" % code)
        msg = err.get("Message", "")
        self.assertTrue(msg, "%s: empty message" % code)
        if message is not None:
            self.assertIn(message, msg)
        return msg

    def assertOK(self, resp):
        meta = resp["ResponseMetadata"]
        self.assertEqual(meta["HTTPStatusCode"], 200)
        self.assertRegex(meta.get("RequestId", ""), UUID_RE)
        return resp
