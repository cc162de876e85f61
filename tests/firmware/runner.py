# Runs one firmware test module inside the MicroPython unix port.
#   micropython runner.py FIRMWARE_DIR TEST_MODULE [TEST_NAME ...]
# Every module-level function named test_* is a test. Each result is one line:
#   @@RESULT <name> <pass|fail|skip> <ms> <message>
# and anything the test prints goes before its result line.
import sys
import time

sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[0].rsplit("/", 1)[0] if "/" in sys.argv[0] else ".")

from fwtest import SkipTest  # noqa: E402

mod = __import__(sys.argv[2])
wanted = sys.argv[3:]
names = [n for n in dir(mod) if n.startswith("test_") and callable(getattr(mod, n))]
names.sort()
for name in names:
    if wanted and name not in wanted:
        continue
    t0 = time.ticks_ms()
    try:
        getattr(mod, name)()
        outcome, msg = "pass", ""
    except SkipTest as e:
        outcome, msg = "skip", str(e)
    except Exception as e:
        outcome = "fail"
        msg = "%s: %s" % (type(e).__name__, e)
        sys.print_exception(e)
    ms = time.ticks_diff(time.ticks_ms(), t0)
    print("@@RESULT %s %s %d %s" % (name, outcome, ms, msg.replace("\n", " ")))
print("@@DONE")
