"""Readable tables for the assessment views (the CLI's default output)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

BAND_STYLE = {"dark_green": "bold green", "light_green": "green", "amber": "yellow", "red": "bold red"}


def _pct(v: Any) -> str:
    return "–" if v is None else f"{v:.1f}"


def _band(b: str | None) -> str:
    return "–" if b is None else f"[{BAND_STYLE.get(b, '')}]{b.replace('_', ' ')}[/]"


def _title(view: dict[str, Any], what: str) -> str:
    return f"{what} — {view['authority']} ({view['la_code']}), as at {view['as_at']}, as known at {view['known_at'][:19]}"


def _rows_table(title: str, rows: list[dict[str, Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("", "inspected", "% outst.", "% good", "% satisf.", "% inadeq.", "% good+", "band"):
        t.add_column(col, justify="left" if not col else "right")
    for r in rows:
        p = r["pct"]
        t.add_row(r["label"], str(r["number_inspected"]), _pct(p["outstanding"]), _pct(p["good"]),
                  _pct(p["satisfactory"]), _pct(p["inadequate"]), _pct(r["pct_good_or_better"]), _band(r["band"]))
    return t


def profile(view: dict[str, Any], console: Console) -> None:
    console.print(_title(view, f"Performance profile {view['year']}, layer {view['layer']}"))
    console.print(_rows_table("Block A — super groups", view["layer1"]["super_groups"]))
    console.print(_rows_table("Block A — groups (most recent inspection of each provider, ¶27)", view["layer1"]["groups"]))
    if view["layer"] == 2:
        for area, rows in view["layer2"].items():
            console.print(_rows_table(f"Layer 2 — {area.replace('_', ' ')}", rows))
    if view["layer"] == 3:
        for year, rows in view["layer3"].items():
            console.print(_rows_table(f"Layer 3 — {year}", [r for r in rows if r["number_inspected"]]))
    if view["layer"] == 4:
        t = Table(title="Layer 4 — providers", title_justify="left")
        cols = list(view["layer4"][0].keys()) if view["layer4"] else []
        for c in cols:
            t.add_column(c)
        for p in view["layer4"]:
            t.add_row(*(str(p[c]) if p[c] is not None else "–" for c in cols))
        console.print(t)
    t = Table(title="Block B", title_justify="left", show_header=False)
    for k, v in view["block_b"].items():
        t.add_row(k.replace("_", " "), str(v))
    console.print(t)
    t = Table(title="Block C — indicators against comparators", title_justify="left")
    for c in ("indicator", "period", "value", "similar areas", "national", "polarity", "in line", "trend"):
        t.add_column(c)
    for r in view["block_c"]:
        t.add_row(*(str(r.get(k, "–")) for k in ("indicator", "period", "value", "similar_areas", "national",
                                                  "polarity", "at_least_in_line", "trend")))
    console.print(t)


def proposal(view: dict[str, Any], console: Console) -> None:
    console.print(_title(view, f"Proposed grade {view['year']} (Annex E)"))
    console.print(f"  Block A: {view['block_a']['label']}   Block B: {view['block_b']['label']}   "
                  f"Block C: {view['block_c']['label'] if view['block_c'] else '–'} (supplements only, ¶53)")
    for c in view["caps"]:
        console.print(f"  cap: {c}")
    console.print(f"  [bold]Proposal: {view['grade']['label']}[/] — the proposal is not the grade (¶56-57)")
    j = view.get("inspector_judgement")
    console.print(f"  Inspector judgement: {j['grade']['label']} — {j['reasons']} ({j['recorded_by']}, {j['ref']})"
                  if j else "  Inspector judgement: none recorded")
    t = Table(title="Considerations (¶58)", title_justify="left")
    for c in ("code", "paragraph", "detail"):
        t.add_column(c)
    for c in view["considerations"]:
        t.add_row(c["code"], c.get("paragraph", ""), c.get("description", c.get("detail", "")))
    console.print(t)
    t = Table(title="Trace: every rule tested", title_justify="left")
    for c in ("rule", "¶", "pass", "figures", "events"):
        t.add_column(c, overflow="fold")
    for r in view["trace"]:
        figures = ", ".join(f"{k}={v}" for k, v in r["figures"].items() if k not in ("groups", "bands"))
        refs = r.get("refs", [])
        t.add_row(r["rule_id"], r["paragraph"], "✔" if r["passed"] else "✘", figures[:160],
                  " ".join(refs[:8]) + (f" …+{len(refs) - 8}" if len(refs) > 8 else ""))
    console.print(t)


def exceptions(view: dict[str, Any], console: Console) -> None:
    console.print(_title(view, f"Exceptions list {view['year']} (¶28-29)"))
    t = Table()
    for c in ("event", "kind", "urn", "occurred", "published", "counts", "rule", "¶", "reason"):
        t.add_column(c, overflow="fold")
    for e in view["exceptions"]:
        refs = e.get("ref") or " ".join(e.get("refs", []))
        counts = e.get("counts", e.get("in_layer_one"))
        reason = e["reason"]
        if e.get("grade_recorded_as"):
            reason += f"; no children on roll: compliance check recorded as {e['grade_recorded_as']} (¶19)"
        t.add_row(refs, e.get("kind", "provider"), e.get("urn") or "", e.get("occurred_on") or "", e.get("published_on") or "",
                  "admitted" if counts else "excluded", e["rule_id"], e["paragraph"], reason)
    console.print(t)


def national(view: dict[str, Any], console: Console) -> None:
    console.print(f"Proposals {view['year']} for {view['total']} authorities, as at {view['as_at']}, as known at {view['known_at'][:19]}")
    t = Table()
    for c in ("la", "authority", "region", "A", "B", "C", "proposal"):
        t.add_column(c)
    for r in view["authorities"]:
        t.add_row(r["la_code"], r["authority"], r["region"], str(r["block_a"] or "–"), str(r["block_b"] or "–"),
                  str(r["block_c"] or "–"), r["proposal_label"])
    console.print(t)
    for label, n in view["counts"].items():
        console.print(f"  {label}: {n}")


def diff(view: dict[str, Any], console: Console) -> None:
    console.print(f"Diff {view['la_code']} {view['year']}: from {view['from']} to {view['to']}")
    ev = view["evidence"]
    console.print(f"  evidence: {len(ev['appeared'])} appeared, {len(ev['changed'])} corrected or completed, "
                  f"{len(ev['withdrawn_or_gone'])} withdrawn")
    for r in ev["appeared"]:
        console.print(f"    + {r['ref']} {r['kind']} {r['urn'] or ''} {r['occurred_on']} ({r['client_id']})")
    for r in ev["changed"]:
        console.print(f"    ~ {r['before']['ref']}→{r['after']['ref']} {r['after']['kind']} fields {', '.join(r['fields'])}")
    for r in ev["withdrawn_or_gone"]:
        console.print(f"    - {r['ref']} {r['kind']} {r['urn'] or ''} ({r['client_id']})")
    c = view["counted"]
    console.print(f"  counted under the cut-off: {len(c['now_counted'])} now counted, {len(c['no_longer_counted'])} no longer")
    for f in view["figures"]:
        console.print(f"    {f['level']} {f['label']}: {f['from']} → {f['to']}")
    p = view["proposal"]
    console.print(f"  proposal {'CHANGED' if p['changed'] else 'unchanged'}: "
                  + "; ".join(f"{k} {v['from']} → {v['to']}" for k, v in p["grades"].items()))
    for r in p["rules_changed"]:
        console.print(f"    rule {r['rule_id']} (¶ {r.get('paragraph', '')}): {r.get('from')} → {r.get('to', r.get('passed'))}")
