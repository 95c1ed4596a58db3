"""Prometheus' text exposition read the way the tests read it: every sample by name and labels."""
from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    """A sample's value; 0 for one not exposed (yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
