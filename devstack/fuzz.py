"""The project's one schemathesis command line: tests/live/test_fuzz.py runs it once per broker, and
bench/fuzz.py runs it many times in a row with a seed per run.

A run from outside the project (its working directory is the caller's `workdir`), configured only by
the project's schemathesis.toml, which changes no check, and schemathesis_hooks.py beside this file,
which spares it a search that cannot succeed. The request timeout lets a generated `Prefer: wait=30`
run its course.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "schemathesis.toml"
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
MAX_EXAMPLES = 25
REQUEST_TIMEOUT_SECONDS = 35
_LINKS_COVERED = re.compile(r"API Links:\s+(\d+) covered")


def schemathesis_command(api_url: str, *args: str, seed: int | None = 1) -> list[str]:
    """The command line fuzzing the API at `api_url` from its /openapi.json with `seed` (None: schemathesis
    picks one), `args` (headers, say) last."""
    return [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(CONFIG),
            "run", f"{api_url}/openapi.json", "--max-examples", str(MAX_EXAMPLES),
            "--request-timeout", str(REQUEST_TIMEOUT_SECONDS), *([] if seed is None else ["--seed", str(seed)]),
            *args]


def run_schemathesis(api_url: str, workdir: Path, *args: str, seed: int | None = 1,
                     timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `schemathesis_command` in `workdir` with the hooks loaded; its output captured."""
    return subprocess.run(schemathesis_command(api_url, *args, seed=seed), cwd=workdir, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)})


def links_covered(output: str) -> int | None:
    """How many API links the stateful phase followed ("API Links: N covered"), None when not reported."""
    found = _LINKS_COVERED.search(output)
    return int(found.group(1)) if found else None
