"""DUIS web service figures for make bench: `gbmeter dcc serve` with virtual boards,
driven over HTTP on 127.0.0.1 by the project's own client (gbmeter.dcc.client), the
Service Responses received by its own Receive Response Service.

duis_roundtrip_ms_median / _p95: one GSME, one reset at a time: CV 4 -> the PRECOMMAND
signed as the Supplier -> CV 5 -> the meter's Response at the listener.
duis_critical_srs_per_s_2_meters / _8_meters: resets sent to every meter at once,
from the first CV 4 to the last Response at the listener. RequestID counters rise per
originator, so one User's CV 4s must reach the service in counter order: here they
are pipelined on one kept-alive HTTP/1.1 connection, each written as soon as it is
signed (the service takes a connection's requests one after the other); the CV 5s,
the checks of the replies and the Responses overlap, except that a meter's CV 5s go
in counter order, each once the one before was acknowledged (a meter takes GBCS
counters only upwards). Every reset must end in the meter's own Response (I0) at
the listener, or the bench fails. _8_meters_cv4_in_turn: the same with each CV 4
sent only once the one before has been answered (a client that does not pipeline:
one User's CV 4s then go at the pace of one round trip each).
Targets (issue 14): median <= 50 ms with one meter, >= 100 critical SRs per second
over 8 meters on a 2-core machine. The rates depend on what else the machine runs
at the time (the virtual boards, the service and the User share its two cores).

With ../shared/duis/xsd the service runs with --xsd and the client and listener
validate too, so every message is checked as a User's bench would.
duis_cpu_ms_per_sr_8_meters_{service,meters,user}: CPU time (ms) per Service Request
in the 8-meter run, of the service process, of the virtual boards, and of this
process (the User's client and listener): what the rate costs, whatever else the
machine runs meanwhile (Linux /proc only)."""

import asyncio
import collections
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


class _Turns:
    """What must go out in order: each waits until the one before it (by ticket) is
    done, on a future of its own (a turn wakes one sender, not all)."""

    def __init__(self):
        self.done = set()
        self.waiting = {}

    async def wait(self, before):
        if before is not None and before not in self.done:
            await self.waiting.setdefault(before, asyncio.get_running_loop().create_future())

    def finish(self, ticket):
        self.done.add(ticket)
        f = self.waiting.pop(ticket, None)
        if f is not None and not f.done():
            f.set_result(None)


class _User:
    """The bench's User System. RequestID counters rise per originator, so its CV 4s
    reach the service in counter order; and a meter takes GBCS counters only upwards,
    so the CV 5s for one meter go in counter order too, each once the one before it
    was acknowledged (I99: then queued at the service, which sends a meter its
    Commands in the order taken)."""

    def __init__(self):
        self.counter = int(time.time() * 1000)
        self.cv4 = _Turns()
        self.cv4.finish(self.counter)
        self.cv5 = _Turns()
        self.latest = {}            # meter -> the counter of its latest reset

    def take(self, meter):
        """(counter, the counter of the meter's reset before it or None)."""
        self.counter += 1
        before, self.latest[meter] = self.latest.get(meter), self.counter
        return self.counter, before


class _Pipeline:
    """CV 4s pipelined on one kept-alive HTTP/1.1 connection (RFC 9112 section 9.3.2):
    each goes out as soon as it is signed, in counter order, without waiting for the
    answer to the one before; the service reads a connection's requests one after the
    other, so it takes them in counter order, and the answers come back in order."""

    def __init__(self, url):
        hostport = url.split("//", 1)[1].rstrip("/")
        self.host, _, port = hostport.rpartition(":")
        self.port = int(port)
        self.pending = collections.deque()
        self.reader = self.writer = self.task = None

    async def __aenter__(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.task = asyncio.create_task(self._answers())
        return self

    async def __aexit__(self, *exc):
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        self.writer.close()

    def post(self, endpoint, body):
        """Write the request now; returns a future of (status, body)."""
        f = asyncio.get_running_loop().create_future()
        self.pending.append(f)
        self.writer.write(f"POST /api/v1/{endpoint} HTTP/1.1\r\nHost: {self.host}:{self.port}"
                          f"\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}"
                          "\r\n\r\n".encode() + body)
        return f

    async def _answers(self):
        try:
            while True:
                status = await self.reader.readline()
                if not status:
                    raise ConnectionError("the service closed the pipelined connection")
                length = None
                while (line := await self.reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length is None:
                    raise ConnectionError(f"an answer without Content-Length: {status!r}")
                body = await self.reader.readexactly(length)
                self.pending.popleft().set_result((int(status.split()[1]), body))
        except Exception as e:
            while self.pending:
                f = self.pending.popleft()
                if not f.done():
                    f.set_exception(e)


class _Arrivals:
    """The listener's messages by ResponseID, each awaited on a future of its own."""

    def __init__(self, listener):
        self.listener = listener
        self.waiting = {}
        listener.on_message = self.arrived

    def arrived(self, summary):
        f = self.waiting.get(summary.get("response_id"))
        if f is not None and not f.done():
            f.set_result(summary)

    async def wait(self, rid, timeout):
        """The summary of the message with this ResponseID, or None on timeout."""
        if rid in self.listener.messages:
            return self.listener.messages[rid]
        f = self.waiting.setdefault(rid, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(f, timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self.waiting.pop(rid, None)


async def _one(c, arrivals, user, meter, pipeline=None, register="time1"):
    """One reset through the front door; seconds from the CV 4 to the Response. The
    CV 4 goes out on `pipeline`, or in turn (once the one before is answered)."""
    mine, before = user.take(meter)
    try:
        xml = srxml.reset_debt_xml(SUPPLIER, bytes.fromhex(meter), mine, register)
        t0 = time.perf_counter()
        signed = xmlsig.sign(xml.encode(), c.signer)
        if pipeline is not None:
            answer = await pipeline.post("serviceT", signed)
        else:
            await user.cv4.wait(mine - 1)
            try:
                answer = await c.post("serviceT", signed)
            finally:
                user.cv4.finish(mine)
        first, reply = c.answer("serviceT", *answer)
        if first.get("code") != "I0":
            raise RuntimeError(f"CV 4 refused: {first}")
        cv5 = c.cv5(xmlsig.parse(xml.encode()), bytes.fromhex(first["reply"]["precommand"]))
        cv5 = xmlsig.sign(cv5, c.signer)
        rid = duisxml.response_id(first["reply"]["request_id"])
        await user.cv5.wait(before)
        second, _ = await c.step("serviceS", cv5)
    finally:
        user.cv4.finish(mine)
        user.cv5.finish(mine)
    if second.get("code") != "I99":
        raise RuntimeError(f"CV 5 refused: {second}")
    summary = await arrivals.wait(rid, 60)
    if summary is None:
        raise RuntimeError(f"no Response for {rid}")
    if summary.get("kind") != "ResponseMessage" or summary.get("code") != "I0":
        raise RuntimeError(f"{rid}: not the meter's Response: {summary}")
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


async def _rate(c, arrivals, user, meters, pid, pipeline):
    """(SRs per second, CPU ms per SR of the service, meters and this process) of
    PER_METER resets to every meter at once."""
    cpu0 = (_cpu(pid, False), _cpu(pid, True), time.process_time())
    t0 = time.perf_counter()
    await asyncio.gather(*[_one(c, arrivals, user, m, pipeline)
                           for _ in range(PER_METER) for m in meters])
    n = len(meters) * PER_METER
    rate = round(n / (time.perf_counter() - t0), 1)
    cpu1 = (_cpu(pid, False), _cpu(pid, True), time.process_time())
    if None in cpu0 + cpu1:
        return rate, {}
    return rate, {k: round((b - a) * 1000 / n, 1)
                  for k, a, b in zip(("service", "meters", "user"), cpu0, cpu1)}


async def _bench(shared, work):
    trust = xmlsig.TrustStore(shared / "duis" / "xmlsign")
    keys = gkeys.KeyFolder(shared / "gbcs" / "keys")
    signer = trust.signer(SUPPLIER.hex())
    xsd = shared / "duis" / "xsd"
    if not (xsd / schema.DUIS_FILE).is_file():
        xsd = None
    schemas = schema.load(xsd) if xsd else None
    listener = await client.Listener(trust, schemas).start()
    arrivals = _Arrivals(listener)
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
                user = _User()
                async with client.Client(info["url"], signer, trust, keys, schemas) as c:
                    await _one(c, arrivals, user, meters[0])      # warm up
                    if n == 1:
                        times = [await _one(c, arrivals, user, meters[0])
                                 for _ in range(ROUNDS)]
                        ms = sorted(t * 1000 for t in times)
                        out["duis_roundtrip_ms_median"] = round(statistics.median(ms), 1)
                        out["duis_roundtrip_ms_p95"] = round(ms[int(0.95 * (len(ms) - 1))], 1)
                    else:
                        async with _Pipeline(info["url"]) as pipe:
                            rate, cpu = await _rate(c, arrivals, user, meters,
                                                    proc.pid, pipe)
                        out[f"duis_critical_srs_per_s_{n}_meters"] = rate
                        if n == 8:
                            out.update((f"duis_cpu_ms_per_sr_8_meters_{k}", v)
                                       for k, v in cpu.items())
                            rate, _ = await _rate(c, arrivals, user, meters,
                                                  proc.pid, None)
                            out["duis_critical_srs_per_s_8_meters_cv4_in_turn"] = rate
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
