"""The container image, run as the GitHub Actions example's service
container runs it (its env and options, read from the workflow file), and
metered through the published port with boto3 and with the workflow's own
step (the AWS CLI). run.sh builds the image and sets MPMETER_IMAGE."""

import json
import os
import shlex
import socket
import subprocess
import time
import unittest
import urllib.request

import boto3
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKFLOW = os.path.join(REPO, "examples", "github-actions", "mpmeter.yml")
IMAGE = os.environ.get("MPMETER_IMAGE")
METER_STEP = "Meter through the mpmeter service"


def podman(*args, check=True):
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, timeout=60)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_workflow():
    with open(WORKFLOW) as f:
        wf = yaml.safe_load(f)
    job = wf["jobs"]["test"]
    return wf, job, job["services"]["mpmeter"]


def service_run_args(service, name, host_port, image):
    """The podman run command line of the workflow's service container:
    GitHub's `docker create` takes the service's options verbatim, then its
    env and ports. Only the host side of the port and the image differ here
    (a free loopback port; the image just built)."""
    args = ["run", "-d", "--name", name]
    args += shlex.split(service.get("options", ""))
    for k, v in service.get("env", {}).items():
        args += ["-e", f"{k}={v}"]
    (mapping,) = service["ports"]
    container_port = str(mapping).split(":")[-1]
    args += ["-p", f"127.0.0.1:{host_port}:{container_port}", image]
    return args


class WorkflowSyntax(unittest.TestCase):
    def test_workflow_is_valid_yaml_with_a_service_container(self):
        wf, job, service = load_workflow()
        # YAML 1.1 reads the key `on` as true.
        self.assertIn(True if True in wf else "on", wf)
        self.assertIn("runs-on", job)
        self.assertRegex(service["image"], r"^[a-z0-9./-]+/mpmeter:[\w.-]+$")
        self.assertEqual(service["ports"], ["8080:8080"])
        # A --health-cmd would run in /bin/sh, which the image lacks.
        self.assertNotIn("--health-cmd", service["options"])
        steps = {s.get("name"): s for s in job["steps"]}
        self.assertIn(METER_STEP, steps)
        self.assertTrue(job["env"]["AWS_ENDPOINT_URL_MARKETPLACE_METERING"].endswith(":8080"))


@unittest.skipUnless(IMAGE, "MPMETER_IMAGE is not set: run test/container/run.sh")
class Image(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wf, cls.job, service = load_workflow()
        cls.name = f"mpmeter-citest-{os.getpid()}"
        cls.port = free_port()
        cls.endpoint = f"http://127.0.0.1:{cls.port}"
        args = service_run_args(service, cls.name, cls.port, IMAGE)
        print("\npodman " + shlex.join(args))
        podman(*args)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(cls.endpoint + "/healthz", timeout=2) as r:
                    cls.health = json.loads(r.read())
                    break
            except OSError as e:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"/healthz never answered: {e}\n{cls.logs()}")
                time.sleep(0.2)

    @classmethod
    def tearDownClass(cls):
        podman("rm", "-f", "-v", cls.name, check=False)

    @classmethod
    def logs(cls):
        p = podman("logs", cls.name, check=False)
        return p.stdout + p.stderr

    def client(self):
        return boto3.client("meteringmarketplace", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="AKIAEXAMPLESELLER001", aws_secret_access_key="seller-secret")

    def test_healthz_reports_the_build(self):
        self.assertEqual(self.health["status"], "ok")
        self.assertEqual(self.health["version"], os.environ["MPMETER_IMAGE_VERSION"])
        self.assertEqual(self.health["commit"], os.environ["MPMETER_IMAGE_COMMIT"])

    def test_healthcheck_command_passes(self):
        # The image's HEALTHCHECK, on the workflow's options' schedule.
        p = podman("healthcheck", "run", self.name, check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        state = json.loads(podman("inspect", self.name).stdout)[0]
        self.assertIn(state["State"]["Health"]["Status"], ("healthy", "starting"))

    def test_runs_as_non_root_with_the_demo_database_in_data(self):
        state = json.loads(podman("inspect", self.name).stdout)[0]
        self.assertEqual(state["Config"]["User"], "65532:65532")
        # A scratch image has no /tmp: --demo's database is under /data.
        self.assertIn("db=.mpmeter-demo-", self.logs())
        self.assertIn("/data", [m["Destination"] for m in state["Mounts"]])

    def test_batch_meter_usage_through_the_published_port(self):
        mm = self.client()
        self.assertEqual(mm.resolve_customer(RegistrationToken="demo-token-1")["CustomerIdentifier"], "cust-example-1")
        rec = {"CustomerIdentifier": "cust-example-1", "Dimension": "gigabytes", "Quantity": 7,
               "Timestamp": int(time.time())}
        out = mm.batch_meter_usage(ProductCode="exampleprod1", UsageRecords=[rec])
        self.assertEqual([r["Status"] for r in out["Results"]], ["Success"])
        again = mm.batch_meter_usage(ProductCode="exampleprod1", UsageRecords=[rec])
        self.assertEqual(again["Results"][0]["MeteringRecordId"], out["Results"][0]["MeteringRecordId"])

    def test_the_workflows_step_runs_against_it(self):
        step = next(s for s in self.job["steps"] if s.get("name") == METER_STEP)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MPMETER_"))}
        env.update({k: str(v) for k, v in self.job["env"].items()})
        env["AWS_ENDPOINT_URL_MARKETPLACE_METERING"] = self.endpoint  # the free port, not 8080
        p = subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], env=env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('"CustomerIdentifier": "cust-example-1"', p.stdout)
        self.assertIn('"Status": "Success"', p.stdout)


if __name__ == "__main__":
    unittest.main()
