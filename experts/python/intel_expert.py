#!/usr/bin/env python3
"""A synod expert written in Python with grpcio: IOC enrichment from a local list.

Serves `synod.expert.v1.Expert` (Describe, Invoke, InvokeStream), the standard
`grpc.health.v1` health service and server reflection, registers itself with the
orchestrator, heartbeats within the TTL the orchestrator grants, and deregisters
on SIGINT/SIGTERM.

    scripts/setup-python-expert.sh                      # venv + stubs from proto/
    experts/python/.venv/bin/python experts/python/intel_expert.py \
        --listen 127.0.0.1:7301 --orchestrator 127.0.0.1:7100

Skill `lookup` (consumes `iocs`, produces `findings`): looks each indicator up in
a CSV intelligence list (`indicator,type,verdict,severity,source,note`) and
returns the matches and how many indicators had no entry.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import signal
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "gen"))

try:
    import grpc
    from google.protobuf import json_format, struct_pb2
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection

    from synod.expert.v1 import expert_pb2, expert_pb2_grpc
    from synod.orchestrator.v1 import orchestrator_pb2, orchestrator_pb2_grpc
except ImportError as missing:  # pragma: no cover - setup problem, explained
    sys.exit(
        f"intel_expert: {missing}. Run scripts/setup-python-expert.sh first and start "
        "this file with experts/python/.venv/bin/python."
    )

LOG = logging.getLogger("intel-expert")
NAME = "intel"
VERSION = "0.1.0"
IOC_TYPES = ["url", "domain", "ipv4", "ipv6", "email", "md5", "sha1", "sha256", "cve"]
SEVERITIES = ["info", "low", "medium", "high"]

INPUT_SCHEMA = {
    "type": "object",
    "required": ["iocs"],
    "properties": {
        "iocs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "value"],
                "properties": {
                    "type": {"type": "string", "enum": IOC_TYPES},
                    "value": {"type": "string", "minLength": 1},
                },
            },
        }
    },
}

MATCH_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["indicator", "indicator_type", "verdict", "severity", "source", "note"],
    "properties": {
        "indicator": {"type": "string"},
        "indicator_type": {"type": "string", "enum": IOC_TYPES},
        "verdict": {"type": "string", "enum": ["malicious", "suspicious", "benign"]},
        "severity": {"type": "string", "enum": SEVERITIES},
        "source": {"type": "string"},
        "note": {"type": "string"},
    },
}

OUTPUT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["matches", "unmatched", "list_size"],
    "properties": {
        "matches": {"type": "array", "items": MATCH_SCHEMA},
        "unmatched": {"type": "integer", "minimum": 0},
        "list_size": {"type": "integer", "minimum": 0},
    },
}


class InvalidInput(Exception):
    """A problem with the caller's input at a JSON Pointer."""

    def __init__(self, pointer: str, message: str):
        super().__init__(f"{pointer}: {message}")
        self.pointer = pointer


def load_intel(path: Path) -> dict[tuple[str, str], dict]:
    """Reads the CSV list; lines starting with `#` are comments."""
    entries: dict[tuple[str, str], dict] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = csv.reader(line for line in handle if line.strip() and not line.startswith("#"))
        for number, row in enumerate(rows, start=1):
            if len(row) != 6:
                raise ValueError(
                    f"{path}: entry {number} has {len(row)} fields; expected "
                    "indicator,type,verdict,severity,source,note"
                )
            indicator, ioc_type, verdict, severity, source, note = (field.strip() for field in row)
            if ioc_type not in IOC_TYPES or severity not in SEVERITIES:
                raise ValueError(f"{path}: entry {number}: unknown type `{ioc_type}` or severity `{severity}`")
            entries[(ioc_type, normalise(ioc_type, indicator))] = {
                "indicator": indicator,
                "indicator_type": ioc_type,
                "verdict": verdict,
                "severity": severity,
                "source": source,
                "note": note,
            }
    return entries


def normalise(ioc_type: str, value: str) -> str:
    """Case-folds names and hashes; strips a domain's trailing dot."""
    value = value.strip()
    if ioc_type in ("domain", "email", "md5", "sha1", "sha256", "cve"):
        value = value.lower().rstrip(".")
    return value


def lookup(intel: dict[tuple[str, str], dict], payload: dict) -> dict:
    """The `lookup` skill: pure, so it is easy to test."""
    iocs = payload.get("iocs")
    if not isinstance(iocs, list):
        raise InvalidInput("/iocs", "expected an array of {type, value} objects")
    matches, unmatched = [], 0
    for index, ioc in enumerate(iocs):
        if not isinstance(ioc, dict) or not isinstance(ioc.get("value"), str) or not ioc["value"]:
            raise InvalidInput(f"/iocs/{index}/value", "expected a non-empty string")
        if ioc.get("type") not in IOC_TYPES:
            raise InvalidInput(f"/iocs/{index}/type", f"expected one of {', '.join(IOC_TYPES)}")
        entry = intel.get((ioc["type"], normalise(ioc["type"], ioc["value"])))
        if entry is None:
            unmatched += 1
        else:
            matches.append(dict(entry))
    return {"matches": matches, "unmatched": unmatched, "list_size": len(intel)}


def to_struct(value: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message


class IntelExpert(expert_pb2_grpc.ExpertServicer):
    """The gRPC service."""

    def __init__(self, intel: dict[tuple[str, str], dict]):
        self.intel = intel

    def card(self) -> expert_pb2.ExpertCard:
        skill = expert_pb2.Skill(
            name="lookup",
            description="Looks indicators up in a local threat-intelligence list (CSV) and "
            "returns the entries that match.",
            consumes=["iocs"],
            produces="findings",
            input_schema=to_struct(INPUT_SCHEMA),
            output_schema=to_struct(OUTPUT_SCHEMA),
            cost_hint=1.0,
            max_sensitivity=expert_pb2.SENSITIVITY_CONFIDENTIAL,
        )
        return expert_pb2.ExpertCard(
            name=NAME,
            version=VERSION,
            description="IOC enrichment from a local intelligence list (Python example expert).",
            skills=[skill],
        )

    def Describe(self, request, context):
        return self.card()

    def _invoke(self, request, context) -> expert_pb2.InvokeResponse:
        started = time.monotonic()
        if request.skill != "lookup":
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown skill `{request.skill}`; this expert offers: lookup")
        payload = json_format.MessageToDict(request.input)
        try:
            output = lookup(self.intel, payload)
        except InvalidInput as problem:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(problem))
        LOG.info(
            "run %s step %s: %d matches, %d unmatched",
            request.run_id, request.step_id, len(output["matches"]), output["unmatched"],
        )
        return expert_pb2.InvokeResponse(
            output=to_struct(output),
            confidence=0.95 if output["matches"] else 0.6,
            usage=expert_pb2.Usage(duration_ms=int((time.monotonic() - started) * 1000)),
        )

    def Invoke(self, request, context):
        return self._invoke(request, context)

    def InvokeStream(self, request, context):
        yield expert_pb2.InvokeStreamMessage(progress=expert_pb2.Progress(fraction=0.0, message="looking up"))
        yield expert_pb2.InvokeStreamMessage(response=self._invoke(request, context))


class Registration:
    """Register, heartbeat within the granted TTL, deregister on stop.

    With access control on, the orchestrator wants an API token with the `expert` role on these
    calls: it is read from SYNOD_TOKEN (`synod token create --subject intel --role expert`) and
    sent as `authorization: Bearer` metadata; it is never logged.
    """

    def __init__(self, orchestrator: str, endpoint: str, card: expert_pb2.ExpertCard):
        token = os.environ.get("SYNOD_TOKEN", "").strip()
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.channel = grpc.insecure_channel(orchestrator)
        self.registry = orchestrator_pb2_grpc.RegistryStub(self.channel)
        self.endpoint, self.card = endpoint, card
        self.instance_id: str | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="registration", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _register(self) -> float:
        reply = self.registry.Register(
            orchestrator_pb2.RegisterRequest(endpoint=self.endpoint, card=self.card),
            timeout=5,
            metadata=self.metadata,
        )
        self.instance_id = reply.instance_id
        LOG.info("registered as %s (ttl %d ms)", reply.instance_id, reply.ttl_ms)
        return max(reply.ttl_ms / 1000 / 3, 0.2)

    def _run(self) -> None:
        interval, backoff = None, 0.2
        while not self.stopping.is_set():
            try:
                if self.instance_id is None:
                    interval = self._register()
                    backoff = 0.2
                else:
                    known = self.registry.Heartbeat(
                        orchestrator_pb2.HeartbeatRequest(instance_id=self.instance_id),
                        timeout=5,
                        metadata=self.metadata,
                    ).known
                    if not known:
                        LOG.warning("orchestrator forgot this instance; registering again")
                        self.instance_id = None
                        continue
            except grpc.RpcError as error:
                LOG.warning("orchestrator unreachable (%s); retrying in %.1f s", error.code().name, backoff)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self.stopping.wait(interval)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        if self.instance_id is not None:
            try:
                self.registry.Deregister(
                    orchestrator_pb2.DeregisterRequest(instance_id=self.instance_id),
                    timeout=5,
                    metadata=self.metadata,
                )
                LOG.info("deregistered %s", self.instance_id)
            except grpc.RpcError as error:
                LOG.warning("deregistration failed: %s", error.code().name)
        self.channel.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="synod example expert in Python: IOC lookup in a local intelligence list.",
        epilog="Example: intel_expert.py --listen 127.0.0.1:7301 --orchestrator 127.0.0.1:7100",
    )
    parser.add_argument("--listen", default="127.0.0.1:7301", help="host:port to serve on (port 0 = any free port)")
    parser.add_argument(
        "--orchestrator",
        default=os.environ.get("SYNOD_ORCHESTRATOR", "127.0.0.1:7100"),
        help="orchestrator gRPC host:port to register with; empty = do not register",
    )
    parser.add_argument("--intel", type=Path, default=HERE / "intel.csv", help="CSV list (default: intel.csv here)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        intel = load_intel(args.intel)
    except (OSError, ValueError) as problem:
        LOG.error("cannot load the intelligence list: %s", problem)
        return 2
    expert = IntelExpert(intel)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    expert_pb2_grpc.add_ExpertServicer_to_server(expert, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    service_names = (
        expert_pb2.DESCRIPTOR.services_by_name["Expert"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(service_names, server)
    host = args.listen.rsplit(":", 1)[0]
    port = server.add_insecure_port(args.listen)
    if port == 0:
        LOG.error("cannot listen on %s", args.listen)
        return 2
    server.start()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set(service_names[0], health_pb2.HealthCheckResponse.SERVING)
    endpoint = f"http://{host}:{port}"
    # The first line on stdout tells a parent process where we listen.
    print(f"listening {endpoint}", flush=True)
    LOG.info("serving %s (%d intel entries)", endpoint, len(intel))

    registration = None
    if args.orchestrator:
        registration = Registration(args.orchestrator, endpoint, expert.card())
        registration.start()

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    LOG.info("shutting down")
    health_servicer.enter_graceful_shutdown()
    if registration is not None:
        registration.stop()
    server.stop(grace=2).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
