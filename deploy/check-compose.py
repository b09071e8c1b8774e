#!/usr/bin/env python3
"""Check docker-compose.yml, deploy/nginx.conf and the Dockerfile against the stayledger CLI.

There is no Docker engine in CI, so this goes as far as it can without one:
1. schema: `docker compose config` (or docker-compose v1) when installed;
2. static: every stayledger service runs a real subcommand with flags and STAYLEDGER_* variables that
   subcommand reads (from its --help), health checks probe /healthz or /readyz on the port it
   listens on, depends_on targets exist (and have a health check when waited on), named volumes
   are declared, URLs between services name a service on its port, the gateway's host:port pairs
   match the services, the Dockerfile builds and runs the binary;
3. live, when nginx is installed: the four services and the sandbox run from the binary (embedded
   stores), behind deploy/nginx.conf with only addresses rewritten, and a reservation goes through
   the gateway from request to confirmed.

Usage: deploy/check-compose.py [--binary target/debug/stayledger] [--no-live]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
NGINX = ROOT / "deploy" / "nginx.conf"
DOCKERFILE = ROOT / "Dockerfile"
IMAGE = "stayledger:local"
# Variables of the program, not of the CLI.
NON_CLI_ENV = {"RUST_LOG", "RUST_BACKTRACE"}
# Flags every subcommand has (clap globals).
GLOBAL_FLAGS = {"--log-json", "--help"}
DUMMY_SECRET = "compose-check-secret-of-at-least-32-bytes"
DUMMY_KEY = "sk_sandbox_compose_check_key"

errors = []


def fail(message):
    errors.append(message)
    print(f"  FAIL {message}")


def ok(message):
    print(f"  ok   {message}")


class Cli:
    """What `stayledger <sub> --help` says: flags, env names and defaults."""

    def __init__(self, binary):
        self.binary = binary
        self.cache = {}

    def help(self, sub):
        if sub not in self.cache:
            run = subprocess.run([self.binary, sub, "--help"], capture_output=True, text=True)
            self.cache[sub] = run.stdout if run.returncode == 0 else None
        return self.cache[sub]

    def flags(self, sub):
        return set(re.findall(r"(--[a-z][a-z0-9-]*)", self.help(sub) or ""))

    def env_names(self, sub):
        return set(re.findall(r"\[env: (STAYLEDGER_[A-Z0-9_]+)", self.help(sub) or ""))

    def addr_env(self, sub):
        match = re.search(r"--addr <ADDR>.*?\[env: (STAYLEDGER_[A-Z_]+)", self.help(sub) or "", re.S)
        return match.group(1) if match else None


def load_compose():
    os.environ.setdefault("STAYLEDGER_JWT_SECRET", DUMMY_SECRET)
    os.environ.setdefault("STAYLEDGER_PAYMENT_GATEWAY_KEY", DUMMY_KEY)
    with open(COMPOSE) as f:
        return yaml.safe_load(f)  # resolves anchors and `<<` merge keys


def schema_check():
    print("schema")
    env = dict(os.environ, STAYLEDGER_JWT_SECRET=DUMMY_SECRET, STAYLEDGER_PAYMENT_GATEWAY_KEY=DUMMY_KEY)
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        run = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, env=env)
        tool = "docker compose config"
    elif shutil.which("docker-compose"):
        # Compose v1 predates the top-level `name`; check the rest of the file.
        text = COMPOSE.read_text().replace("\nname: stayledger\n", "\n", 1)
        with tempfile.NamedTemporaryFile("w", suffix=".yml", dir=ROOT, delete=False) as tmp:
            tmp.write(text)
        try:
            run = subprocess.run(["docker-compose", "-f", tmp.name, "--project-directory", str(ROOT), "config", "-q"], capture_output=True, text=True, env=env)
        finally:
            os.unlink(tmp.name)
        tool = "docker-compose (v1) config"
    else:
        print("  SKIPPED: neither `docker compose` nor docker-compose is installed")
        return
    if run.returncode == 0:
        ok(f"{tool} accepts docker-compose.yml")
    else:
        fail(f"{tool}: {run.stderr.strip()}")


def listen_port(service, cli, sub):
    """The port a stayledger service listens on, from --addr or its env fallback."""
    command = service.get("command") or []
    addr = None
    if "--addr" in command:
        addr = command[command.index("--addr") + 1]
    else:
        addr = (service.get("environment") or {}).get(cli.addr_env(sub) or "")
    if not addr:
        return None
    return int(str(addr).rsplit(":", 1)[1])


def check_stayledger_service(name, service, cli, ports):
    command = service.get("command")
    if not isinstance(command, list) or not command:
        fail(f"{name}: command must be a list starting with a stayledger subcommand")
        return
    sub = command[0]
    if cli.help(sub) is None:
        fail(f"{name}: `stayledger {sub}` is not a subcommand")
        return
    unknown = [a for a in command[1:] if a.startswith("--") and a not in cli.flags(sub) | GLOBAL_FLAGS]
    if unknown:
        fail(f"{name}: `stayledger {sub}` has no flag {', '.join(unknown)}")
    env = service.get("environment") or {}
    if not isinstance(env, dict):
        fail(f"{name}: environment must be a mapping")
        env = {}
    read = cli.env_names(sub)
    for key in env:
        if key.startswith("STAYLEDGER_") and key not in read:
            fail(f"{name}: `stayledger {sub}` does not read {key}")
        elif not key.startswith("STAYLEDGER_") and key not in NON_CLI_ENV:
            fail(f"{name}: unexpected variable {key}")
    port = listen_port(service, cli, sub)
    if port is None:
        fail(f"{name}: no --addr; the default listens on 127.0.0.1 only, unreachable from other containers")
        return
    ports[name] = port
    test = " ".join((service.get("healthcheck") or {}).get("test") or [])
    probe = re.search(r"http://localhost:(\d+)/(healthz|readyz)\b", test)
    if not probe:
        fail(f"{name}: health check must call /healthz or /readyz on localhost")
    elif int(probe.group(1)) != port:
        fail(f"{name}: health check probes port {probe.group(1)}, the service listens on {port}")
    if sub == "saga" and "STAYLEDGER_PAYMENT_GATEWAY_URL" not in env and "--payment-gateway-url" not in command:
        fail(f"{name}: the saga needs STAYLEDGER_PAYMENT_GATEWAY_URL")
    if not unknown and probe and int(probe.group(1)) == port:
        ok(f"{name}: stayledger {sub} on port {port}, probed at /{probe.group(2)}")


def check_links(compose, ports):
    services = compose["services"]
    for name, service in services.items():
        deps = service.get("depends_on") or {}
        for dep in deps:
            if dep not in services:
                fail(f"{name}: depends_on unknown service {dep}")
            elif isinstance(deps, dict) and (deps[dep] or {}).get("condition") == "service_healthy" and "healthcheck" not in services[dep]:
                fail(f"{name}: waits for {dep} to be healthy, but {dep} has no health check")
        for volume in service.get("volumes") or []:
            source = str(volume).split(":", 1)[0]
            if not source.startswith((".", "/")) and source not in (compose.get("volumes") or {}):
                fail(f"{name}: volume {source} is not declared")
        for key, value in (service.get("environment") or {}).items():
            for host, port in re.findall(r"//([a-z][a-z0-9-]*):(\d+)", str(value)):
                if host in ports and ports[host] != int(port):
                    fail(f"{name}: {key} points at {host}:{port}, {host} listens on {ports[host]}")
                elif host not in services:
                    fail(f"{name}: {key} points at unknown service {host}")
    ok("depends_on, volumes and service URLs are consistent")


def check_gateway(compose, ports):
    conf = NGINX.read_text()
    services = compose["services"]
    pairs = set(re.findall(r"\b([a-z][a-z0-9-]*):(\d{2,5})\b", conf))
    for host, port in sorted(pairs):
        if host not in services:
            fail(f"nginx.conf: {host}:{port} is not a compose service")
        elif ports.get(host) != int(port):
            fail(f"nginx.conf: {host}:{port}, but {host} listens on {ports.get(host)}")
    for needed in ("command-api", "query-api", "payment-sandbox"):
        if needed not in {h for h, _ in pairs}:
            fail(f"nginx.conf: nothing routes to {needed}")
    gateway = services.get("gateway") or {}
    mounts = " ".join(str(v) for v in gateway.get("volumes") or [])
    if "./deploy/nginx.conf:" not in mounts:
        fail("gateway: deploy/nginx.conf is not mounted")
    ok(f"gateway routes to {', '.join(sorted(f'{h}:{p}' for h, p in pairs))}")


def check_dockerfile(compose):
    text = DOCKERFILE.read_text()
    for needed, why in [
        ("cargo build --release", "builds the release binary"),
        ("-p stayledger", "builds the stayledger package"),
        ('ENTRYPOINT ["stayledger"]', "runs the binary with the compose command as arguments"),
        ("curl", "has curl for the health checks"),
    ]:
        if needed not in text:
            fail(f"Dockerfile: does not contain {needed!r} ({why})")
    rust = re.search(r"FROM rust:(\d+)\.(\d+)", text)
    workspace = re.search(r'rust-version = "(\d+)\.(\d+)"', (ROOT / "Cargo.toml").read_text())
    if rust and workspace and tuple(map(int, rust.groups())) < tuple(map(int, workspace.groups())):
        fail(f"Dockerfile: rust {'.'.join(rust.groups())} is older than the workspace's {'.'.join(workspace.groups())}")
    ignore = (ROOT / ".dockerignore").read_text() if (ROOT / ".dockerignore").exists() else ""
    if "/target" not in ignore:
        fail(".dockerignore: /target is not excluded (the build context would hold the build output)")
    built = [n for n, s in compose["services"].items() if s.get("image") == IMAGE]
    if any("build" not in compose["services"][n] for n in built):
        fail(f"services on {IMAGE} must all have `build: .`")
    ok(f"Dockerfile builds {IMAGE} for {len(built)} services")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / "target" / "debug" / "stayledger"))
    parser.add_argument("--no-live", action="store_true", help="skip the live gateway check")
    args = parser.parse_args()
    if not Path(args.binary).exists():
        sys.exit(f"no binary at {args.binary}: build it first (cargo build -p stayledger)")
    cli = Cli(args.binary)
    compose = load_compose()
    schema_check()
    print("services against the CLI")
    ports = {}
    for name, service in compose["services"].items():
        if service.get("image") == IMAGE:
            check_stayledger_service(name, service, cli, ports)
    check_links(compose, ports)
    check_gateway(compose, ports)
    check_dockerfile(compose)
    if not args.no_live and not errors:
        import gateway_smoke

        gateway_smoke.run(args.binary, NGINX, fail, ok)
    if errors:
        sys.exit(f"{len(errors)} problem(s) in docker-compose.yml / deploy/ / Dockerfile")
    print("docker-compose.yml, deploy/nginx.conf and Dockerfile agree with the CLI")


if __name__ == "__main__":
    main()
