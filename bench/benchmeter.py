"""What the heap benchmarks share: the Command they send a meter and the check that
a booted, provisioned board serves Commands (bench/run.py on the unix port,
bench/bench_qemu.py on the Cortex-M3 board)."""

from gbmeter.gbcs import codec
from gbmeter.supplier.answer import check_answer

GSME_ID = "00db1234567890a1"


def reset_command(s, counter):
    """A GCS04a reset of Time Debt Register 1, signed and wrapped by Session s."""
    payload = codec.change_debt(1, 0, 0, 0)
    content = codec.build_gbz([(0x0705, 0x02, payload)])
    pre = codec.build_apdu(1, counter, s.supplier.title, bytes.fromhex(GSME_ID), 0x0F01, content)
    return s.command(pre)[0]


def serves(s, link, make=reset_command, commands=4, first_counter=10):
    """Whether the meter on link answers `commands` Commands from make() with verified,
    successful Responses."""
    for i in range(commands):
        cmd = make(s, first_counter + i)
        if not check_answer(s, codec.parse_message(cmd)["apdu"], link.gbcs(cmd))["ok"]:
            return False
    return True
