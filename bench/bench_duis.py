"""DUIS web service figures for make bench: `gbmeter dcc serve` with virtual boards,
driven over HTTP on 127.0.0.1 by the project's own client (gbmeter.dcc.client), the
Service Responses received by its own Receive Response Service.

duis_roundtrip_ms_median / _p95: one GSME, one reset at a time: CV 4 -> the PRECOMMAND
signed as the Supplier -> CV 5 -> the meter's Response at the listener.
duis_critical_srs_per_s_2_meters / _8_meters: resets sent to every meter at once,
from the first CV 4 to the last Response at the listener. RequestID counters rise per
originator, so a User System sends its CV 4s in counter order, each once the one
before has been answered (as any client of a DUIS service must); the signing, the
checks of the replies and the CV 5s overlap. Targets (issue 14): median <= 50 ms with
one meter, >= 100 critical SRs per second over 8 meters on a 2-core machine.

With ../shared/duis/xsd the service runs with --xsd and the client and listener
validate too, so every message is checked as a User's bench would.
duis_cpu_ms_per_sr_8_meters_{service,meters,user}: CPU time (ms) per Service Request
in the 8-meter run, of the service process, of the virtual boards, and of this
process (the User's client and listener): what the rate costs, whatever else the
machine runs meanwhile (Linux /proc only)."""

import asyncio
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gbmeter import paths
from gbmeter.dcc import client, duisxml, schema, srxml, xmlsig
from gbmeter.gbcs import keys as gkeys

GBMETER = str(Path(sys.executable).parent / "gbmeter")
SUPPLIER = bytes.fromhex("90b3d51f30010000")
ROUNDS = 40
PER_METER = 25


def _serve(work, listener_url, sims, xsd=None):
    argv = [GBMETER, "dcc", "serve", "--listen", "127.0.0.1:0", "--json", "--response-url",
            listener_url, "--dcc-dir", str(work / "dcc")]
    if xsd is not None:
        argv += ["--xsd", str(xsd)]
    for s in sims:
        argv += ["--sim", s]
    err = open(work / "serve.err", "w")
    env = dict(os.environ, GBMETER_HOME=str(work / "home"))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    ready, _, _ = select.select([proc.stdout], [], [], 300)
    line = proc.stdout.readline() if ready else ""
    if not line:
        proc.kill()
        proc.wait()
        raise RuntimeError("gbmeter dcc serve did not start: " + (work / "serve.err").read_text())
    return proc, json.loads(line)


def _stop(proc):
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _Counter:
    """The originator's RequestID counters, and whose CV 4 may go out: the one whose
    counter follows the last answered."""

    def __init__(self):
        self.value = self.answered = int(time.time() * 1000)
        self.turn = asyncio.Condition()

    async def post_in_order(self, c, mine, signed):
        async with self.turn:
            await self.turn.wait_for(lambda: self.answered == mine - 1)
        try:
            return await c.post("serviceT", signed)
        finally:
            async with self.turn:
                self.answered = mine
                self.turn.notify_all()


async def _one(c, listener, counter, meter, register="time1"):
    """One reset through the front door; seconds from the CV 4 to the Response."""
    counter.value += 1
    mine = counter.value
    xml = srxml.reset_debt_xml(SUPPLIER, bytes.fromhex(meter), mine, register)
    t0 = time.perf_counter()
    signed = xmlsig.sign(xml.encode(), c.signer)
    first, reply = c.answer("serviceT", *await counter.post_in_order(c, mine, signed))
    if first.get("code") != "I0":
        raise RuntimeError(f"CV 4 refused: {first}")
    cv5 = c.cv5(xmlsig.parse(xml.encode()), bytes.fromhex(first["reply"]["precommand"]))
    second, _ = await c.step("serviceS", xmlsig.sign(cv5, c.signer))
    if second.get("code") != "I99":
        raise RuntimeError(f"CV 5 refused: {second}")
    rid = duisxml.response_id(first["reply"]["request_id"])
    if not await listener.wait_for(lambda lst: rid in lst.messages, 60):
        raise RuntimeError(f"no Response for {rid}")
    return time.perf_counter() - t0


def _cpu(pid, children):
    """CPU seconds of a process (children=False) or of its descendants (True)."""
    def own(p):
        f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def kids(p):
        out = []
        for t in os.listdir(f"/proc/{p}/task"):
            out += [int(c) for c in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
        return out

    try:
        if not children:
            return own(pid)
        total, todo = 0.0, kids(pid)
        while todo:
            p = todo.pop()
            try:
                total += own(p)
                todo += kids(p)
            except OSError:
                pass
        return total
    except OSError:
        return None


async def _bench(shared, work):
    trust = xmlsig.TrustStore(shared / "duis" / "xmlsign")
    keys = gkeys.KeyFolder(shared / "gbcs" / "keys")
    signer = trust.signer(SUPPLIER.hex())
    xsd = shared / "duis" / "xsd"
    if not (xsd / schema.DUIS_FILE).is_file():
        xsd = None
    schemas = schema.load(xsd) if xsd else None
    listener = await client.Listener(trust, schemas).start()
    out = {}
    loop = asyncio.get_running_loop()
    try:
        for n in (1, 2, 8):
            sims = ["gsme"] if n == 1 else [
                f"{'gsme' if i % 2 else 'esme'}:00db12345678{0xc0 + i:04x}" for i in range(n)]
            folder = work / f"m{n}"
            (folder / "dcc").mkdir(parents=True)
            # no volume thresholds: the bench sends far more resets than the defaults allow
            (folder / "dcc" / "adt.json").write_text(json.dumps({"thresholds": []}))
            proc, info = await loop.run_in_executor(None, _serve, folder, listener.url, sims,
                                                    xsd)
            try:
                meters = [d["id"] for d in info["devices"]]
                counter = _Counter()
                async with client.Client(info["url"], signer, trust, keys, schemas) as c:
                    await _one(c, listener, counter, meters[0])      # warm up
                    if n == 1:
                        times = [await _one(c, listener, counter, meters[0])
                                 for _ in range(ROUNDS)]
                        ms = sorted(t * 1000 for t in times)
                        out["duis_roundtrip_ms_median"] = round(statistics.median(ms), 1)
                        out["duis_roundtrip_ms_p95"] = round(ms[int(0.95 * (len(ms) - 1))], 1)
                    else:
                        cpu0 = (_cpu(proc.pid, False), _cpu(proc.pid, True), time.process_time())
                        t0 = time.perf_counter()
                        await asyncio.gather(*[_one(c, listener, counter, m)
                                               for m in meters for _ in range(PER_METER)])
                        rate = n * PER_METER / (time.perf_counter() - t0)
                        out[f"duis_critical_srs_per_s_{n}_meters"] = round(rate, 1)
                        cpu1 = (_cpu(proc.pid, False), _cpu(proc.pid, True), time.process_time())
                        if n == 8 and None not in cpu0 + cpu1:
                            for name, a, b in zip(("service", "meters", "user"), cpu0, cpu1):
                                out[f"duis_cpu_ms_per_sr_8_meters_{name}"] = round(
                                    (b - a) * 1000 / (n * PER_METER), 1)
            finally:
                await loop.run_in_executor(None, _stop, proc)
    finally:
        await listener.stop()
    return out


def run():
    shared = paths.shared()
    if shared is None or not (shared / "duis" / "xmlsign").is_dir():
        print("DUIS figures skipped: ../shared/duis is absent (XML-signing keys)")
        return {}
    with tempfile.TemporaryDirectory(prefix="gbmeter-bench-duis-") as work:
        return asyncio.run(_bench(shared, Path(work)))


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
