"""Reference data shipped with the service."""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

from domain.authorities import Authorities, Authority


@lru_cache
def authorities() -> Authorities:
    text = resources.files("adapters").joinpath("data/local-authorities-2011.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines())
    return Authorities(tuple(Authority(r["la_code"], r["ons_code"], r["name"], r["type"], r["region"]) for r in rows))
