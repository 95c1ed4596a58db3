"""Fault injection: what the peers should do wrong, and the dice that decide when.

Why: the order service must survive slow, failing, hanging, lying and
"applied-but-reported-failed" peers; tests and the chaos run switch these on
through PUT /admin/faults. The settings are an immutable snapshot, replaced
whole by an update that validated first, so a request reads one consistent
config and a bad update changes nothing.

Randomness comes from one `random.Random`, seeded from REFPEERS_FAULT_SEED when
that is set, so a chaos run can be replayed.
"""
from __future__ import annotations

import math
import os
import random
from dataclasses import asdict, dataclass, replace

from refpeers.state import Invalid

SCOPES = ("all", "products", "carts")
RATES = ("error_rate", "put_apply_then_error_rate", "hang_rate", "garbage_rate")


@dataclass(frozen=True)
class FaultConfig:
    """Current fault settings; every rate is a probability in [0, 1]."""

    latency_ms: float = 0.0  # added to every non-admin call, whatever the scope
    error_rate: float = 0.0  # answer error_status before doing anything
    error_status: int = 503
    put_apply_then_error_rate: float = 0.0  # product PUT: apply, then answer 503
    hang_rate: float = 0.0  # sleep hang_seconds, then process normally
    hang_seconds: float = 5.0
    garbage_rate: float = 0.0  # answer 200 text/html, applying nothing
    scope: str = "all"  # which paths the rate-based faults hit

    def hits(self, area: str) -> bool:
        """Whether the rate-based faults apply to this area ("products" or "carts")."""
        return self.scope == "all" or self.scope == area

    @property
    def active(self) -> bool:
        """Whether any rate-based fault can fire (lets the fast path skip the dice)."""
        return any(getattr(self, name) > 0 for name in RATES)


def _number(name: str, value, low: float, high: float | None = None) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise Invalid(f"{name} must be a number {bounds}, got {value!r}")
    return float(value)


def validated(base: FaultConfig, changes) -> FaultConfig:
    """`base` with `changes` applied; Invalid on unknown keys or out-of-range values."""
    if not isinstance(changes, dict):
        raise Invalid("fault settings must be a JSON object")
    known = set(FaultConfig.__dataclass_fields__)
    unknown = set(changes) - known
    if unknown:
        raise Invalid(f"unknown fault settings: {sorted(unknown)}; known: {sorted(known)}")
    clean = {}
    for name, value in changes.items():
        if name in RATES:
            clean[name] = _number(name, value, 0.0, 1.0)
        elif name in ("latency_ms", "hang_seconds"):
            clean[name] = _number(name, value, 0.0)
        elif name == "error_status":
            if type(value) is not int or not 400 <= value <= 599:
                raise Invalid(f"error_status must be an integer HTTP status 400..599, got {value!r}")
            clean[name] = value
        elif name == "scope":
            if value not in SCOPES:
                raise Invalid(f"scope must be one of {list(SCOPES)}, got {value!r}")
            clean[name] = value
    return replace(base, **clean)


class Faults:
    """The live fault settings and the seeded dice."""

    def __init__(self, seed: str | None = None):
        if seed is None:
            seed = os.environ.get("REFPEERS_FAULT_SEED")
        self.rng = random.Random(seed)  # noqa: S311 - fault dice, not security
        self.config = FaultConfig()

    def update(self, changes) -> dict:
        """Validate and apply a partial update, all or nothing; the full config afterwards."""
        self.config = validated(self.config, changes)
        return asdict(self.config)

    def as_dict(self) -> dict:
        return asdict(self.config)

    def roll(self, rate: float) -> bool:
        """True with probability `rate` (never draws when the rate is 0)."""
        return rate > 0 and self.rng.random() < rate


def from_env(environ=os.environ) -> dict:
    """Initial fault settings from REFPEERS_LATENCY_MS / REFPEERS_ERROR_RATE."""
    settings = {}
    for var, name in (("REFPEERS_LATENCY_MS", "latency_ms"), ("REFPEERS_ERROR_RATE", "error_rate")):
        raw = environ.get(var, "").strip()
        if raw:
            try:
                settings[name] = float(raw)
            except ValueError:
                raise ValueError(f"{var} must be a number, got {raw!r}") from None
    return settings
