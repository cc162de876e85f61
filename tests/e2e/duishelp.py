"""Helpers for the DUIS web service tests: the service as a user starts it
(`gbmeter dcc serve --json`, a real process on 127.0.0.1), an event loop thread for
the test's own client and Receive Response Service (gbmeter.dcc.client), and
requests made the way a User System makes them."""

import asyncio
import datetime
import json
import os
import select
import signal
import subprocess
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

import simboards
from simboards import GBMETER

SUPPLIER = bytes.fromhex("90b3d51f30010000")
SECOND_SUPPLIER = bytes.fromhex("90b3d51f30030000")
NETWORK_OPERATOR = bytes.fromhex("90b3d51f30020000")


class LoopThread:
    """An asyncio loop in a thread: run(coro) from the test."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout=60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Service:
    """A `gbmeter dcc serve --json` process and what it printed."""

    def __init__(self, dcc_dir, response_url, xsd, sims, xml_keys=None, extra=(),
                 timeout=180, env=None):
        self.argv = [GBMETER, "dcc", "serve", "--listen", "127.0.0.1:0", "--json",
                     "--response-url", response_url, "--xsd", str(xsd), "--dcc-dir",
                     str(dcc_dir), "--retry-max", "0.5", *extra]
        for s in sims:
            self.argv += ["--sim", s]
        if xml_keys:
            self.argv += ["--xml-keys", str(xml_keys)]
        self.errlog = Path(dcc_dir).parent / f"serve-{os.getpid()}-{time.monotonic_ns()}.err"
        self.err = open(self.errlog, "w")
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=self.err,
                                     text=True, env=env)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"gbmeter dcc serve did not start: {self.log()}")
        self.info = json.loads(line)
        self.url = self.info["url"]
        self.devices = {d["id"]: d for d in self.info["devices"]}

    def log(self):
        self.err.flush()
        return self.errlog.read_text()

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        return self.proc.returncode

    def kill(self):
        """Power cut for the service: SIGKILL, whatever it is doing."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.err.close()


def make_xml_cert(folder, eui_hex, issuer_cert_path):
    """A User XML-signing certificate for a party the shared store has none for
    (self-issued: the verifier looks certificates up by issuer and serial, it does not
    check a chain), named like the ../shared ones."""
    issuer = x509.load_pem_x509_certificate(Path(issuer_cert_path).read_bytes()).issuer
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "87"),
                         x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER,
                                            b"\x00" + bytes.fromhex(eui_hex),
                                            _type=_ASN1Type.BitString)])
    now = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=36500))
            .sign(key, hashes.SHA256()))
    name = f"xml-sign-{eui_hex.upper()}-ds"
    (Path(folder) / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (Path(folder) / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return name


def wait_until(pred, timeout=30.0):
    """simboards.wait_until with the longer wait a service's asynchronous answers need."""
    return simboards.wait_until(pred, timeout)
