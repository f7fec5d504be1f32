#!/usr/bin/env python3
"""Derives the compact ATT&CK tables embedded in synod-expert-tracing.

Run from the crate directory (experts/tracing) with the shared datasets beside
the checkout:

    python3 scripts/gen_attack_data.py ../../../shared/datasets/attack-stix

Writes data/techniques.tsv (id, name, tactics; plus `revoked` rows mapping a
revoked technique to its replacement) and data/groups.tsv (group id, name,
techniques) from enterprise-attack.json.zst and group_techniques.csv.
`tests/attack_data.rs` checks that data/groups.tsv matches the CSV.
Source data: MITRE ATT&CK (see data/LICENSE-MITRE-ATTACK-CAPEC.txt).
"""
import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path


def main(stix_dir: Path, out_dir: Path) -> None:
    raw = subprocess.run(
        ["zstd", "-dc", str(stix_dir / "enterprise-attack.json.zst")],
        check=True, capture_output=True,
    ).stdout
    objects = json.loads(raw)["objects"]
    by_stix_id = {}
    rows = []
    for o in objects:
        if o.get("type") != "attack-pattern":
            continue
        ext = next((r["external_id"] for r in o.get("external_references", [])
                    if r.get("source_name") == "mitre-attack"), None)
        if ext is None:
            continue
        by_stix_id[o["id"]] = (ext, o)
        if o.get("revoked") or o.get("x_mitre_deprecated"):
            continue
        tactics = [p["phase_name"] for p in o.get("kill_chain_phases", [])
                   if p.get("kill_chain_name") == "mitre-attack"]
        name = o["name"]
        rows.append((ext, name, ",".join(tactics)))
    names = {ext: name for ext, name, _ in rows}
    lines = []
    for ext, name, tactics in sorted(rows):
        if "." in ext and ext.split(".")[0] in names:
            name = f"{names[ext.split('.')[0]]}: {name}"
        lines.append(f"{ext}\t{name}\t{tactics}")
    active = set(names)
    for o in objects:
        if o.get("type") == "relationship" and o.get("relationship_type") == "revoked-by":
            old = by_stix_id.get(o["source_ref"])
            new = by_stix_id.get(o["target_ref"])
            if old and new and new[0] in active and old[0] not in active:
                lines.append(f"{old[0]}\trevoked\t{new[0]}")
    header = "# MITRE ATT&CK Enterprise techniques: id, name, tactics (or: old id, `revoked`, replacement id)\n"
    (out_dir / "techniques.tsv").write_text(header + "\n".join(lines) + "\n")

    groups = defaultdict(lambda: ["", set()])
    with open(stix_dir / "group_techniques.csv", newline="") as f:
        for row in csv.DictReader(f):
            groups[row["group_id"]][0] = row["group_name"]
            groups[row["group_id"]][1].add(row["technique_id"])
    header = "# MITRE ATT&CK intrusion sets: group id, name, techniques used\n"
    body = "\n".join(f"{gid}\t{name}\t{','.join(sorted(techs))}"
                     for gid, (name, techs) in sorted(groups.items()))
    (out_dir / "groups.tsv").write_text(header + body + "\n")


if __name__ == "__main__":
    stix = Path(sys.argv[1] if len(sys.argv) > 1 else "../../../shared/datasets/attack-stix")
    main(stix, Path(__file__).resolve().parent.parent / "data")
