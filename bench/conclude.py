"""How a chaos or restarts run ends: its report saved as JSON, printed as a table, and its verdict
as the exit status (1 when an invariant broke), so a reader and CI see the same thing."""
from __future__ import annotations

import json
from pathlib import Path


def conclude(report: dict, out: Path, hidden: tuple[str, ...] = ()) -> None:
    """Write `report` to `out`, print it but its `violations` and `hidden` entries, then exit."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    width = max(map(len, report))
    for name, value in report.items():
        if name not in ("violations", *hidden):
            print(f"{name:<{width}}  {value}")
    print("\nINVARIANTS HOLD" if not report["violations"] else f"\nVIOLATIONS: {report['violations']}")
    raise SystemExit(0 if not report["violations"] else 1)
