"""Reads a MISP feed directory with PyMISP, as a MISP instance's feed pull
would, and checks that manifest.json and hashes.csv match the events.
Prints one JSON object for tests/misp_feed.rs; exits 1 on any mismatch.

usage: misp_feed_check.py FEED_DIR
"""
import json
import os
import sys

from pymisp import MISPEvent


def main():
    feed = sys.argv[1]
    with open(os.path.join(feed, "manifest.json")) as f:
        manifest = json.load(f)
    with open(os.path.join(feed, "hashes.csv")) as f:
        listed = sorted(line.strip() for line in f if line.strip())
    errors, expected, events = [], [], {}
    for uuid, entry in manifest.items():
        event = MISPEvent()
        event.load_file(os.path.join(feed, uuid + ".json"))
        if event.uuid != uuid:
            errors.append(f"{uuid}.json holds event {event.uuid}")
        # What PyMISP would write in a manifest for the event it loaded.
        own = event.manifest[event.uuid]
        for key in ("info", "date", "analysis", "threat_level_id", "timestamp"):
            if str(own[key]) != str(entry.get(key)):
                errors.append(f"{uuid}: manifest {key} {entry.get(key)!r}, event {own[key]!r}")
        if own["Orgc"] != entry.get("Orgc"):
            errors.append(f"{uuid}: manifest Orgc {entry.get('Orgc')!r}, event {own['Orgc']!r}")
        if [t["name"] for t in own["Tag"]] != [t["name"] for t in entry.get("Tag", [])]:
            errors.append(f"{uuid}: manifest tags differ from the event's")
        live = [a for a in event.attributes if not getattr(a, "deleted", False)]
        for attribute in live:
            expected.extend(f"{h},{uuid}" for h in attribute.hash_values("md5"))
        events[uuid] = {
            "info": event.info,
            "tags": [t.name for t in event.tags],
            "attributes": [
                {
                    "type": a.type,
                    "value": a.value,
                    "to_ids": a.to_ids,
                    "deleted": bool(getattr(a, "deleted", False)),
                    "tags": [t.name for t in a.tags],
                    "sightings": [str(s.type) for s in a.sightings],
                }
                for a in event.attributes
            ],
            "reports": len(event.event_reports),
        }
    if sorted(expected) != listed:
        errors.append(f"hashes.csv lists {len(listed)} lines, the events give {len(expected)}")
    print(json.dumps({"events": events, "hashes": len(listed), "errors": errors}))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
