# Byte streams the link runs over: the REPL's stdio (unix port pty, USB CDC) or a UART
# (uartport.py).
# Each has read(buf, nmax, timeout_ms) -> bytes read into buf[:nmax] (0 on timeout)
# and write(data).
import sys
import select


class Closed(Exception):
    """The other end went away (end of file on the stream)."""


class StdioPort:
    def __init__(self):
        self.r = sys.stdin.buffer
        self.w = sys.stdout.buffer
        self.poll = select.poll()
        self.poll.register(sys.stdin, select.POLLIN)
        self.one = bytearray(1)  # reused: no allocation per byte

    def read(self, buf, nmax, timeout_ms):
        # stdin's readinto blocks until the buffer is full, so take one byte at a
        # time while poll says more is waiting.
        if not self.poll.poll(timeout_ms):
            return 0
        n = 0
        one = self.one
        while n < nmax:
            if not self.r.readinto(one):
                if n:
                    return n
                raise Closed()
            buf[n] = one[0]
            n += 1
            if not self.poll.poll(0):
                break
        return n

    def write(self, data):
        self.w.write(data)
        try:
            self.w.flush()
        except AttributeError:
            pass


def open_port(cfg):
    if cfg.get("link", "stdio") == "uart":
        # Only boards linked over a UART load that code (uartport.py).
        from uartport import UartPort
        return UartPort(cfg["uart"])
    return StdioPort()
