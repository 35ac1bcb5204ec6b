"""`python -m nas.cli`: what the `nas` script runs (worker processes start this way)."""

import sys

from nas.cli.main import main

sys.exit(main())
