# The link over a board's UART (board.json "link": "uart"), the other stream of
# stream.py: read(buf, nmax, timeout_ms) -> bytes read into buf[:nmax] (0 on timeout)
# and write(data). Its own module so that boards linked over stdio never load it.


class UartPort:
    def __init__(self, cfg):
        from machine import UART, Pin
        self.u = UART(cfg.get("id", 0), baudrate=cfg.get("baud", 115200),
                      tx=Pin(cfg["tx"]), rx=Pin(cfg["rx"]), timeout=0)

    def read(self, buf, nmax, timeout_ms):
        from time import sleep_ms
        while not self.u.any():
            if timeout_ms <= 0:
                return 0
            sleep_ms(1)
            timeout_ms -= 1
        return self.u.readinto(buf, min(nmax, self.u.any())) or 0

    def write(self, data):
        self.u.write(data)
