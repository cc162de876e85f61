# Boot: load the modules a serving board holds, then app.boot (appboot.py reads this
# board's settings, board.json from boards/<name>/, and makes the meter) serves the
# link. Kept tiny so it can stay a .py file when the rest is deployed as .mpy.
# Modules load one at a time with a collection after each, so the garbage of loading
# one is freed before the next: in a 64K heap fragmentation, not size, is the limit.
import gc
import sys

# The unix port puts the script's folder first on sys.path as an absolute path, so
# every module's __file__, a name interned for good, carries that path: in a 64K heap
# a long folder name (a test's temporary folder) costs kilobytes that a board, whose
# modules are found under "", never spends. Run from its own folder, as `gbmeter sim`
# runs it, "" finds the same files.
if sys.path and sys.path[0]:
    import os
    if os.getcwd() == sys.path[0]:
        sys.path[0] = ""
    del os

for _m in ("onecall", "usecases", "link", "stream", "service", "store", "meter", "p256",
           "gbcsmac", "envelope", "app"):
    __import__(_m)
    gc.collect()

import app  # noqa: E402

app.boot()
