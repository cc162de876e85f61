# Where the meter's key pairs come from: the board's os.urandom; never on a board
# without an entropy source (board.json "entropy": false, as qemu_mps2), which
# refuses plainly; a seed from provisioning only on a test board ("test_board": true),
# the same seed making the same keys. A refusal changes nothing.
import json

import appboot
import p256
import store
from fwtest import tmpdir

SEED_A = "5eed" * 16          # 32 bytes
SEED_B = "0123456789abcdef" * 4


def meter_in(name, **cfg):
    root = tmpdir(name)
    cfg.update(root=root, name="test")
    return appboot.make_meter(cfg, {"device": "gsme"}), root


def anchors():
    _, ds = p256.keypair()
    return {"90b3d51f30010000": {"role": 2, "ds": ds.hex()}}


def provision(m, **req):
    reply, _ = m.diag("provision", req)
    return reply


def stored(root):
    return json.dumps(store.Store(root).load())


def test_board_with_entropy_makes_its_own_keys_and_takes_no_seed():
    m1, _ = meter_in("ent1")
    m2, root = meter_in("ent2")
    a = anchors()
    r1, r2 = provision(m1, anchors=a), provision(m2, anchors=a)
    assert r1["ok"] and r2["ok"] and r1["ds"] != r2["ds"] and r1["ka"] != r2["ka"]
    hello, _ = m2.diag("ping", {})
    assert hello["entropy"] is True and hello["test_board"] is False
    before = stored(root)
    r = provision(m2, anchors=a, seed=SEED_A)
    assert not r["ok"] and "only a test board" in r["error"]
    assert stored(root) == before and m2.st["pub"]["ds"] == r2["ds"]


def test_no_entropy_source_refuses_to_make_keys():
    m, root = meter_in("noent", entropy=False)
    hello, _ = m.diag("ping", {})
    assert hello["entropy"] is False and hello["test_board"] is False
    before = stored(root)
    for req, word in (({}, "no entropy source"), ({"seed": SEED_A}, "only a test board")):
        r = provision(m, anchors=anchors(), **req)
        assert not r["ok"] and word in r["error"], r
        assert stored(root) == before and "keys" not in m.st and not m.st.get("anchors")


def test_test_board_without_entropy_takes_a_seed():
    m, root = meter_in("seed1", entropy=False, test_board=True)
    a = anchors()
    r = provision(m, anchors=a)
    assert not r["ok"] and "no entropy source" in r["error"] and "seed" in r["error"]
    before = stored(root)
    for seed in ("00" * 31, "zz" * 32, "5eed" * 16 + "5", 1234):  # short, not hex, odd, no text
        r = provision(m, anchors=a, seed=seed)
        assert not r["ok"] and "at least 32 bytes, in hex" in r["error"], (seed, r)
        assert stored(root) == before and "keys" not in m.st
    r = provision(m, anchors=a, seed=SEED_A)
    assert r["ok"], r
    keys = store.Store(root).load()["keys"]
    # the public keys are the private keys' own, and the DS key signs
    assert p256.pubkey(bytes.fromhex(keys["ds"])).hex() == r["ds"]
    assert p256.pubkey(bytes.fromhex(keys["ka"])).hex() == r["ka"]
    assert keys["ds"] != keys["ka"]
    msg = b"a Response"
    assert p256.verify(bytes.fromhex(r["ds"]), msg, p256.sign(bytes.fromhex(keys["ds"]), msg))
    # the same seed makes the same key pairs on another board; another seed others
    m2, _ = meter_in("seed2", entropy=False, test_board=True)
    again = provision(m2, anchors=a, seed=SEED_A)
    assert (again["ds"], again["ka"]) == (r["ds"], r["ka"])
    other = provision(m2, anchors=a, seed=SEED_B)
    assert other["ok"] and other["ds"] != r["ds"] and other["ka"] != r["ka"]
    # a seed with the key pairs kept is a contradiction: refused, nothing changes
    before = stored(root)
    r = provision(m, anchors=a, seed=SEED_B, new_keys=False)
    assert not r["ok"] and "keeps its key pairs" in r["error"] and stored(root) == before
    # keeping the keys needs no entropy at all
    assert provision(m, anchors=a, new_keys=False)["ok"]
    assert store.Store(root).load()["keys"] == keys
