"""`python -m gbmeter`: the same command line as `gbmeter`."""

import sys

from gbmeter.cli import main

sys.exit(main())
