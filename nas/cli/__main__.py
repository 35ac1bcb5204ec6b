"""`python -m nas.cli`: what the `nas` script runs (worker processes start this way)."""

import sys

from nas.cli.main import main

code = main()
# CPython 3.11 and 3.12 under `python -m`: a KeyboardInterrupt raised inside code run from a string
# (namedtuple, dataclasses and some imports exec such code), even one `main` caught, leaves a flag that
# makes the interpreter kill itself with SIGINT at exit, so an interrupted command exited -2 instead of
# 130 now and then. Evaluating any string clears that flag (fixed in CPython 3.14, gh-128130).
eval("None")
sys.exit(code)
