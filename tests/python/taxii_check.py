"""Drives a cirfed node's TAXII 2.1 server with OASIS taxii2-client (v21) and
prints what it saw as one JSON object, for tests/taxii.rs to check.

usage: taxii_check.py BASE_URL USER TOKEN POST_ENVELOPE_FILE
"""
import json
import sys

from taxii2client.v21 import Server, as_pages


def main():
    base, user, token, envelope_file = sys.argv[1:5]
    server = Server(base + "/taxii2/", user=user, password=token)
    root = server.api_roots[0]
    report = {
        "title": server.title,
        "api_root_title": root.title,
        "max_content_length": root.max_content_length,
        "collections": {c.alias: {"id": c.id, "can_read": c.can_read, "can_write": c.can_write} for c in root.collections},
    }
    analysts = next(c for c in root.collections if c.alias == "analysts")

    # Every object once, page by page, as SIEM connectors poll.
    seen, pages = [], 0
    for envelope in as_pages(analysts.get_objects, per_request=500):
        pages += 1
        seen.extend((o["id"], o.get("modified", o.get("created"))) for o in envelope.get("objects", []))
    report["paged"] = {"pages": pages, "objects": len(seen), "distinct": len(set(seen))}
    report["paged_types"] = sorted({i.split("--")[0] for i, _ in seen})

    # added_after: only what the node stored after the page's last date_added.
    first = analysts.get_objects(limit=100)
    last_added = first_page_last_added(analysts)
    later = [o["id"] for page in as_pages(analysts.get_objects, per_request=1000, added_after=last_added)
             for o in page.get("objects", [])]
    report["added_after"] = {"first_page": len(first.get("objects", [])), "later": len(later)}

    indicators = analysts.get_objects(type="indicator", limit=50)
    report["match_type"] = sorted({o["type"] for o in indicators.get("objects", [])})

    manifest = analysts.get_manifest(limit=10)
    report["manifest"] = [sorted(entry.keys()) for entry in manifest.get("objects", [])][:1]
    report["manifest_media_types"] = sorted({e["media_type"] for e in manifest.get("objects", [])})

    some_id = indicators["objects"][0]["id"]
    report["versions"] = analysts.object_versions(some_id).get("versions", [])
    report["object"] = [o["id"] for o in analysts.get_object(some_id).get("objects", [])]

    with open(envelope_file, encoding="utf-8") as f:
        envelope = json.load(f)
    status = analysts.add_objects(envelope, poll_interval=0.2, timeout=20)
    report["status"] = {
        "status": status.status,
        "total": status.total_count,
        "success": status.success_count,
        "failure": status.failure_count,
        "failures": [f.get("message", "") for f in (status.failures or [])],
    }
    print(json.dumps(report))


def first_page_last_added(collection):
    """The X-TAXII-Date-Added-Last of the first 100 objects, read the way a
    client that pages by time does (taxii2-client does not expose headers, so
    ask the manifest, whose date_added values are the same)."""
    manifest = collection.get_manifest(limit=100)
    return manifest["objects"][-1]["date_added"]


if __name__ == "__main__":
    main()
