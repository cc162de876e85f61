"""The DUIS service's parts without meters: every message it builds is valid DUIS 5.4
once signed, the outbox's once-only rules, the request header reader, E20, the
delivery of the outbox (parallel, one at a time while the endpoint fails)."""

import pytest

from gbmeter.dcc import duisxml, outbox, schema, srxml, xmlsig
from gbmeter.dcc.web import DuisService, Meter, listen_address, parse_sim
from gbmeter.errors import UserError

SUP = bytes.fromhex("90b3d51f30010000")
GSME = bytes.fromhex("00db1234567890a1")


def header(register="time1", counter=42):
    root = xmlsig.parse(srxml.reset_debt_xml(SUP, GSME, counter, register).encode())
    return duisxml.read_header(root)


def test_read_header():
    h = header()
    assert h.request_id == "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A1:42"
    assert h.response_id == "00-DB-12-34-56-78-90-A1:90-B3-D5-1F-30-01-00-00:42"
    assert (h.originator, h.target, h.counter, h.command_variant) == (
        SUP.hex(), GSME.hex(), 42, 4)
    assert (h.service_reference, h.service_reference_variant, h.body) == (
        "2.3", "2.3.1", "ResetDebtRegister")
    text = srxml.reset_debt_xml(SUP, GSME, 1, "time1")
    for bad in (text.replace(":1<", ":x<"), text.replace("<sr:CommandVariant>4",
                                                         "<sr:CommandVariant>12"),
                text.replace("<sr:ServiceReference>2.3</sr:ServiceReference>", ""),
                text.replace(":1<", ":18446744073709551616<")):
        with pytest.raises(xmlsig.XmlError):
            duisxml.read_header(xmlsig.parse(bad.encode()))


def test_every_message_built_is_valid_duis_once_signed(duis_dir):
    trust = xmlsig.TrustStore(duis_dir / "xmlsign")
    schemas = schema.load(duis_dir / "xsd")
    dcc = trust.signer()
    h = header()
    upd = duisxml.read_header(xmlsig.parse(srxml.update_debt_xml(
        SUP, GSME, 5, "gsme", 1, 2, 3, 4, {"rate": 1}, {"rate": 2}).encode()))
    rid = f"{duisxml.DCC_EUI}:{duisxml.eui(SUP)}:1700000000000"
    msgs = {
        "I99": duisxml.ack(h), "E12": duisxml.ack(upd, "E12"),
        "precommand": duisxml.precommand(h, b"\xdf\x09\x01"),
        "response": duisxml.service_response(h.request_id, "2.3", "2.3.1", b"\xdf\x09\x02"),
        "E21": duisxml.error_response(upd.request_id, "2.3", "2.3", "E21"),
        "alert": duisxml.device_alert("00-DB-12-34-56-78-90-A1:90-B3-D5-1F-30-01-00-00:7",
                                      0x8F1E, b"\xdf\x09\x03"),
        "inventory": duisxml.inventory(upd, [{"id": GSME.hex(), "device": "gsme",
                                              "profile": "smets2", "firmware": "0.1"}]),
    }
    for choice in duisxml.AD1_CHOICES:
        msgs[choice] = duisxml.quarantined(rid, choice, h.request_id, 3)
    for name, root in msgs.items():
        signed = xmlsig.sign(root, dcc)
        parsed = xmlsig.parse(signed)
        want = "extended" if name in ("I99", "precommand", "response") else "official"
        assert schemas.validate(parsed) == want, name
        assert xmlsig.verify(signed, trust).signer is dcc
    with pytest.raises(ValueError):
        duisxml.quarantined(rid, "ADSomethingElse", h.request_id, 1)


def test_date_time_has_milliseconds():
    import datetime
    t = datetime.datetime(2022, 7, 22, 9, 37, 56, 134567, tzinfo=datetime.timezone.utc)
    assert duisxml.date_time(t) == "2022-07-22T09:37:56.134Z"


def test_outbox_once_only(tmp_path):
    box = outbox.Outbox(tmp_path)
    h = header(counter=10)
    box.add_request(h, "GCS04a", b"<x/>", b"\xdf\x01", 123)
    with pytest.raises(outbox.Replay):          # the counter must rise
        box.add_request(header(counter=10), "GCS04a", b"<x/>", b"\xdf\x01", 123)
    with pytest.raises(outbox.Replay):
        box.take_counter(SUP.hex(), 9)
    with pytest.raises(outbox.NoRequest):
        box.accept("90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A1:11", GSME.hex(), b"\xdf")
    cmd = box.accept(h.request_id, GSME.hex(), b"\xdf\x02")
    with pytest.raises(outbox.Replay):          # accepted once
        box.accept(h.request_id, GSME.hex(), b"\xdf\x02")
    box.set_state(cmd, "released", {"release": True}, expect="received")
    with pytest.raises(outbox.Replay):          # only from the state named
        box.set_state(cmd, "sending", expect="received")
    box.set_state(cmd, "sending", expect="released")
    box.set_state(cmd, "done", outgoing=[(h.response_id, "Response", b"<a/>")])
    box.queue([(h.response_id, "Response", b"<b/>")])       # the same ResponseID: kept once
    rows = box.due()
    assert [(r["response_id"], r["xml"]) for r in rows] == [(h.response_id, b"<a/>")]
    box.failed(rows[0]["id"], "HTTP 503", 60)
    assert box.due() == []
    box.close()
    again = outbox.Outbox(tmp_path)                         # survives a restart
    assert again.command(cmd)["state"] == "done"
    assert again.messages()[0]["attempts"] == 1 and again.messages()[0]["state"] == "pending"
    assert again.last_counter(SUP.hex()) == 10
    a, b = again.dcc_counter(), again.dcc_counter()
    assert b > a


def read_header_cv1(counter):
    root = xmlsig.parse(srxml.read_prepayment_registers_xml(SUP, GSME, counter).encode())
    return duisxml.read_header(root)


def test_outbox_cv1_request_and_command_in_one_go(tmp_path):
    """A CV 1 (non-critical) request is recorded completed with its Command released,
    in one transaction that takes the counter: a replay stores nothing."""
    box = outbox.Outbox(tmp_path)
    h = read_header_cv1(20)
    assert h.command_variant == 1
    cmd = box.add_direct(h, "GCS14", b"<x/>", b"\xdf\x09", 123, GSME.hex(), b"\xdf\x09\x00")
    with pytest.raises(outbox.Replay):
        box.add_direct(read_header_cv1(20), "GCS14", b"<x/>", b"\xdf", 123, GSME.hex(), b"\xdf")
    assert [c["id"] for c in box.commands()] == [cmd]
    c = box.command(cmd)
    assert c["state"] == "released" and c["signed"] == b"\xdf\x09\x00"
    assert box.request(h.request_id)["state"] == "completed"
    with pytest.raises(outbox.Replay):          # no CV 5 completes a CV 1 request
        box.accept(h.request_id, GSME.hex(), b"\xdf")
    box.close()
    again = outbox.Outbox(tmp_path)             # a restart finds it released: sent then
    assert [c["id"] for c in again.commands("released")] == [cmd]
    assert again.last_counter(SUP.hex()) == 20


def test_a_port_another_process_holds_is_e20(tmp_path, monkeypatch):
    """A Command for a meter whose port another process holds longer than
    $GBMETER_PORT_WAIT is not sent: E20, the holder named."""
    import subprocess
    import sys
    monkeypatch.setenv("GBMETER_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("GBMETER_PORT_WAIT", "0.3")
    port = tmp_path / "port"
    port.write_text("")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from gbmeter.board import portlock; "
         "portlock.acquire(sys.argv[1], 1); print('held', flush=True); time.sleep(30)",
         str(port)], stdout=subprocess.PIPE, text=True, env=dict(__import__("os").environ))
    try:
        assert holder.stdout.readline().strip() == "held"
        svc = DuisService.__new__(DuisService)
        svc.meter_timeout = 1.0
        m = Meter("00db1234567890a1", "gsme", str(port))
        kind, reason = svc._exchange(m, b"\xdd")
        assert kind == "E20" and m.link is None and "in use by" in reason, reason
    finally:
        holder.kill()
        holder.wait()


def test_a_port_that_does_not_open_is_e20(tmp_path):
    svc = DuisService.__new__(DuisService)
    svc.meter_timeout = 1.0
    m = Meter("00db1234567890a1", "gsme", str(tmp_path / "no-such-port"))
    kind, reason = svc._exchange(m, b"\xdd")
    assert kind == "E20" and "no-such-port" in reason


def test_option_parsing():
    assert parse_sim("gsme") == ("gsme", None, None)
    assert parse_sim("esme:00-DB-12-34-56-78-90-B0:smets2-pre") == (
        "esme", "00db1234567890b0", "smets2-pre")
    assert listen_address("127.0.0.1:0") == ("127.0.0.1", 0)
    for bad in ("water", "gsme:xyz", "gsme:00db1234567890a1:p:q"):
        with pytest.raises(UserError):
            parse_sim(bad)
    with pytest.raises(UserError):
        listen_address("8079")


def test_delivery_runs_in_parallel_and_one_at_a_time_while_the_endpoint_fails(tmp_path):
    """The outbox is delivered over real HTTP to an endpoint whose first 24 answers
    are 503: every message arrives with a 2xx once; the first DELIVERY_PARALLEL go
    out at once, then, the endpoint failing, one at a time; healthy again, several at
    once, never more than DELIVERY_PARALLEL."""
    import asyncio
    import time

    from aiohttp import web as aioweb

    from gbmeter.dcc import web as duisweb

    calls = []                  # (start, end, response id, status)
    state = {"inflight": 0, "max": 0, "seen": 0}
    down_for = 24                           # answers

    async def endpoint(request):
        start = time.monotonic()
        body = await request.read()
        state["seen"] += 1
        status = 503 if state["seen"] <= down_for else 200
        state["inflight"] += 1
        state["max"] = max(state["max"], state["inflight"])
        await asyncio.sleep(0.05 if status == 503 else 0.01)    # long enough to overlap
        state["inflight"] -= 1
        calls.append((start, time.monotonic(), body.decode(), status))
        return aioweb.Response(status=status, text="ok\n")

    async def run():
        app = aioweb.Application()
        app.router.add_post("/", endpoint)
        runner = aioweb.AppRunner(app, access_log=None)
        await runner.setup()
        site = aioweb.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        svc = DuisService.__new__(DuisService)
        svc.response_url = f"http://127.0.0.1:{port}/"
        svc.db = outbox.Outbox(tmp_path)
        svc.wake = asyncio.Event()
        svc.endpoint_down = False
        svc.retry_max = 0.1
        quiet, duisweb.QUIET = duisweb.QUIET, True
        svc.db.queue([(f"first:{i}", "Response", f"first:{i}".encode()) for i in range(30)])
        task = asyncio.create_task(svc._deliver())
        try:
            async def all_delivered(n):
                while len(svc.db.messages("delivered")) < n:
                    await asyncio.sleep(0.02)
            await asyncio.wait_for(all_delivered(30), 20)
            healthy_from = len(calls)
            state["max"] = 0
            svc.db.queue([(f"second:{i}", "Response", f"second:{i}".encode())
                          for i in range(30)])
            svc.wake.set()
            await asyncio.wait_for(all_delivered(60), 20)
            return healthy_from, state["max"]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            duisweb.QUIET = quiet
            svc.db.close()
            await runner.cleanup()

    healthy_from, healthy_max = asyncio.run(run())
    ok = [c[2] for c in calls if c[3] == 200]
    assert sorted(ok) == sorted([f"first:{i}" for i in range(30)]
                                + [f"second:{i}" for i in range(30)])      # each once
    by_start = sorted(calls)
    assert [c[3] for c in by_start[:down_for]] == [503] * down_for
    first = duisweb.DELIVERY_PARALLEL
    # the first ones at once; once they failed, each try alone until one succeeds
    assert max(c[1] for c in by_start[:first - 1]) > by_start[first - 1][0], "not at once"
    for i in range(first, down_for + 1):
        assert by_start[i][0] >= max(c[1] for c in by_start[:i]), f"try {i} overlapped"
    assert 1 < healthy_max <= duisweb.DELIVERY_PARALLEL
    assert len(calls) > healthy_from
