"""Live part of check-compose.py: the compose services run from the binary on 127.0.0.1 (embedded
stores in a temp dir instead of EventStoreDB + MongoDB), deploy/nginx.conf runs in front of them with
only the addresses rewritten, and a reservation goes through the gateway from request to confirmed."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from datetime import date, timedelta
from pathlib import Path

SECRET = "gateway-smoke-secret-of-at-least-32-bytes"
GATEWAY_KEY = "sk_sandbox_gateway_smoke_key"
START_TIMEOUT = 20
FLOW_TIMEOUT = 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Services:
    """The stayledger processes of the compose file, each on 127.0.0.1 port 0."""

    def __init__(self, binary, data_dir):
        self.binary = binary
        self.data_dir = data_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("STAYLEDGER_")}
        self.env.update(STAYLEDGER_JWT_SECRET=SECRET, STAYLEDGER_PAYMENT_GATEWAY_KEY=GATEWAY_KEY,
                        RUST_LOG="warn")
        self.children = {}
        self.addrs = {}

    def start(self, name, args):
        child = subprocess.Popen([self.binary, *args], stdout=subprocess.PIPE, text=True, env=self.env)
        self.children[name] = child
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            match = re.search(r"listening on http://([0-9.]+:\d+)", line)
            if match:
                self.addrs[name] = match.group(1)
                return match.group(1)
        raise RuntimeError(f"{name} printed no address (exit {child.poll()})")

    def token(self, *args):
        run = subprocess.run([self.binary, "token", "--data-dir", self.data_dir, *args],
                             capture_output=True, text=True, env=self.env, check=True)
        return run.stdout.strip()

    def stop(self, fail):
        for name, child in reversed(list(self.children.items())):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    code = child.wait(timeout=10)
                    if code != 0:
                        fail(f"live: {name} exited with {code} on SIGTERM")
                except subprocess.TimeoutExpired:
                    child.kill()
                    fail(f"live: {name} did not stop within 10 s of SIGTERM")
            if child.stdout:
                child.stdout.close()


def gateway_conf(nginx_conf, addrs, port, tmp):
    """deploy/nginx.conf with backends at their real addresses, inside a minimal nginx.conf."""
    text = nginx_conf.read_text()
    text = re.sub(r"^\s*resolver [^;]*;", "", text, flags=re.M)
    for name, addr in addrs.items():
        text = re.sub(rf"\b{re.escape(name)}:\d+\b", addr, text)
    text = re.sub(r"listen \d+;", f"listen 127.0.0.1:{port};", text)
    (tmp / "site.conf").write_text(text)
    temp_paths = " ".join(f"{k}_temp_path {tmp};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp / "nginx.conf").write_text(
        f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\nevents {{}}\n"
        f"http {{ access_log off; {temp_paths} include {tmp}/site.conf; }}\n"
    )
    return tmp / "nginx.conf"


def call(base, method, path, token=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    if token:
        request.add_header("authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def flow(base, services, expect):
    admin = services.token("--role", "admin", "--sub", "root", "--lodging", "*")
    customer = services.token("--role", "customer", "--sub", "smoke-customer")
    expect("GET /healthz answered by nginx", call(base, "GET", "/healthz")[0] == 200)
    expect("GET /readyz reaches query-api", call(base, "GET", "/readyz")[0] == 200)
    expect("GET /openapi.json reaches query-api", call(base, "GET", "/openapi.json")[0] == 200)
    status, body = call(base, "POST", "/reservations", None, {})
    expect("POST without a token: 401 problem+json from command-api",
           status == 401 and isinstance(body, dict) and body.get("status") == 401)
    status, body = call(base, "POST", "/lodgings", admin, {
        "lodging_id": "smoke", "name": "Smoke Inn", "nightly_rate": 90000, "rooms": 2,
        "approval_mode": "instant"})
    expect(f"POST /lodgings reaches command-api: {status}", status == 201)
    stay = {"lodging_id": "smoke", "check_in": str(date.today() + timedelta(days=3)),
            "check_out": str(date.today() + timedelta(days=5)), "guests": 1}
    status, body = call(base, "POST", "/reservations", customer, stay)
    expect(f"POST /reservations: {status} {body}", status == 202)
    if status != 202:
        return
    rid, position = body["id"], body["position"]
    status, doc = call(base, "GET", f"/reservations/{rid}?min_position={position}", customer)
    expect(f"GET /reservations/{{id}}?min_position reaches query-api: {status}", status == 200)
    deadline = time.monotonic() + FLOW_TIMEOUT
    while time.monotonic() < deadline and doc.get("status") != "confirmed":
        time.sleep(0.1)
        _, doc = call(base, "GET", f"/reservations/{rid}", customer)
    expect(f"the reservation is confirmed through projector and saga: {doc.get('status')}",
           doc.get("status") == "confirmed")
    status, _ = call(base, "GET", "/sandbox/charges")
    expect(f"GET /sandbox/charges without a token is refused: {status}", status == 401)
    status, charges = call(base, "GET", "/sandbox/charges", admin)
    expect("GET /sandbox/charges with the platform admin's token shows the charge",
           status == 200 and any(c.get("idempotency_key") == rid for c in charges))
    status, _ = call(base, "PUT", "/sandbox/config", admin, {"overloaded": True})
    expect(f"PUT /sandbox/config is refused at the gateway: {status}", status == 403)
    # Webhook subscriptions are query-api's for every method (a loopback target: refused, by field).
    status, body = call(base, "POST", "/webhooks", customer, {"url": "http://127.0.0.1:9/hook"})
    fields = [e.get("field") for e in body.get("errors", [])] if isinstance(body, dict) else []
    expect(f"POST /webhooks reaches query-api: {status} {fields}", status == 400 and fields == ["url"])
    status, body = call(base, "GET", "/webhooks", customer)
    expect(f"GET /webhooks reaches query-api: {status}", status == 200 and body.get("items") == [])


def run(binary, nginx_conf, fail, ok):
    print("live gateway (embedded stores, deploy/nginx.conf)")
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None)
    if not nginx:
        print("  SKIPPED: nginx is not installed")
        return
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = str(tmp / "data")
        services = Services(binary, data)
        proxy = None
        try:
            services.start("payment-sandbox", ["payment-sandbox", "--addr", "127.0.0.1:0", "--data-dir", data])
            for name in ("command-api", "query-api", "projector"):
                services.start(name, [name, "--addr", "127.0.0.1:0", "--data-dir", data])
            gateway = f"http://{services.addrs['payment-sandbox']}/sandbox"
            services.start("saga", ["saga", "--addr", "127.0.0.1:0", "--data-dir", data,
                                    "--payment-gateway-url", gateway, "--payment-retry-base", "200ms"])
            port = free_port()
            conf = gateway_conf(nginx_conf, services.addrs, port, tmp)
            test = subprocess.run([nginx, "-t", "-q", "-c", str(conf), "-p", str(tmp)], capture_output=True, text=True)
            if test.returncode != 0:
                fail(f"live: nginx -t: {test.stderr.strip()}")
                return
            ok("nginx -t accepts deploy/nginx.conf")
            proxy = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"])
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                try:
                    if call(base, "GET", "/healthz")[0] == 200:
                        break
                except OSError:
                    time.sleep(0.05)

            def expect(what, passed):
                (ok if passed else fail)(f"live: {what}")

            flow(base, services, expect)
        except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
            fail(f"live: {e}")
        finally:
            if proxy:
                proxy.terminate()
                proxy.wait(timeout=10)
            services.stop(fail)
