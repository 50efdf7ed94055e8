"""``python -m bench.gpu.sections NAME ARGS_JSON RESULT_JSON``: one part of the GPU check, in this process.

The driver (``bench.gpu.__main__``) runs each under its own time limit; the result file is
rewritten as the part goes, so a part cut off at its limit still leaves what it measured.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from bench.gpu import parity, serving, throughput
from bench.gpu.common import Recorder


def _parity(args: dict, rec: Recorder) -> None:
    parity.parity_section(args, rec)
    parity.switch_check(args, rec)


SECTIONS = {
    "prepare_models": serving.prepare_models,
    "fill_store": serving.fill_store,
    "parity": _parity,
    "switch_probe": parity.switch_probe,
    "throughput": throughput.throughput_section,
    "big": throughput.throughput_section,
    "ingest_config": throughput.ingest_config,
    "latency": serving.latency_section,
    "rerank": serving.rerank_section,
    "ocr": serving.ocr_section,
}


def main() -> None:
    name, args, result = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
    rec = Recorder(result)
    try:
        SECTIONS[name](args, rec)
    except Exception:
        rec.set("error", traceback.format_exc()[-3000:])
        raise


if __name__ == "__main__":
    main()
