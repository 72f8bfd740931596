"""Every analysis is registered with its function in trainlab.analyses: importing that package
alone (no probe module) lists all of them, the off-loop forms of probes included."""

import json
import subprocess
import sys

MOVED = {"roughness-index", "input-derivatives", "gradient-flow-solution", "lojasiewicz-fit",
         "lojasiewicz-linear-bound", "generalization-gap-change", "sgd-minus-gd"}


def test_the_analyses_package_alone_registers_every_analysis_next_to_its_function():
    code = ("import json, sys\n"
            "from trainlab.analyses import ANALYSES\n"
            "print(json.dumps({'probes': 'trainlab.probes' in sys.modules, 'entries': "
            "{n: ANALYSES.get(n).__module__ for n in ANALYSES.names()}}))\n")
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                    text=True, check=True).stdout)
    assert not out["probes"]
    assert set(out["entries"]) >= MOVED
    assert all(module.startswith("trainlab.analyses.") for module in out["entries"].values())
