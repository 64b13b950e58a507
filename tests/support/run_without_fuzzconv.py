"""Run a script with every import of fuzzconv refused: proves a repro.py stands alone."""

import runpy
import sys


class RefuseFuzzconv:
    def find_spec(self, name, path=None, target=None):
        if name == "fuzzconv" or name.startswith("fuzzconv."):
            raise ImportError("a repro.py must not import fuzzconv")
        return None


sys.meta_path.insert(0, RefuseFuzzconv())
sys.path = [p for p in sys.path if "fuzzconv" not in p]
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
