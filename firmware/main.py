# Boot: load the modules a serving board holds, then app.boot (appboot.py reads this
# board's settings, board.json from boards/<name>/, and makes the meter) serves the
# link. Kept tiny so it can stay a .py file when the rest is deployed as .mpy.
# Modules load one at a time with a collection after each, so the garbage of loading
# one is freed before the next: in a 64K heap fragmentation, not size, is the limit.
import gc

for _m in ("onecall", "usecases", "link", "stream", "service", "store", "meter", "p256",
           "gbcsmac", "envelope", "app"):
    __import__(_m)
    gc.collect()

import app  # noqa: E402

app.boot()
