"""Validates a report folder's OCSF files against the OCSF 1.6.0 JSON schema.

    python tests/ocsf_validate.py REPORT_DIR

Needs the PyPI packages `ocsf-json-schema` (the OCSF schemas, offline) and
`jsonschema`; .ci/run installs both and runs this on the demo's output. Every line
of events.ocsf.jsonl must be a valid API Activity (6003) and every line of
findings.ocsf.jsonl a valid Detection Finding (2004), both with the `cloud`
profile; their counts and ids must equal report.json's events and findings.
Prints one line per check and ends with "N passed, M failed"; exits 1 on any failure.
"""

import json
import sys
from pathlib import Path

from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

VERSION = "1.6.0"
PROFILES = ["cloud"]

passed = 0
failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok: {what}")
    else:
        failed += 1
        print(f"FAIL: {what}{': ' + str(detail)[:2000] if detail != '' else ''}")


def lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def validator(schema, class_uid):
    name = schema.lookup_class_name_from_uid(class_uid=class_uid)
    s = schema.get_class_schema(class_name=name, profiles=PROFILES)
    Draft202012Validator.check_schema(s)
    return Draft202012Validator(s)


def validate_all(v, records, what):
    bad = []
    for i, r in enumerate(records):
        errors = sorted(v.iter_errors(r), key=lambda e: list(e.path))
        if errors:
            bad.append((i, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]]))
    check(not bad, f"every {what} line validates against OCSF {VERSION} ({len(records)} lines)", bad[:5])


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    d = Path(sys.argv[1])
    report = json.loads((d / "report.json").read_text(encoding="utf-8"))
    events = lines(d / "events.ocsf.jsonl")
    findings = lines(d / "findings.ocsf.jsonl")
    schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=VERSION))

    check(len(events) == len(report["events"]) > 0,
          f"one API Activity per event ({len(events)} of {len(report['events'])})")
    check(len(findings) == len(report["findings"]) > 0,
          f"one Detection Finding per finding ({len(findings)} of {len(report['findings'])})")
    check([e["metadata"]["uid"] for e in events] == [e["event_id"] for e in report["events"]],
          "API Activity uids are the report's event ids, in order")
    check(all(e["class_uid"] == 6003 and e["metadata"]["version"] == VERSION for e in events),
          "every event line is class 6003 of OCSF 1.6.0")
    check(all(f["class_uid"] == 2004 and f["metadata"]["version"] == VERSION for f in findings),
          "every finding line is class 2004 of OCSF 1.6.0")
    uids = [f["finding_info"]["uid"] for f in findings]
    check(len(set(uids)) == len(uids), "finding uids are distinct")
    related = [[r["uid"] for r in f["finding_info"]["related_events"]] for f in findings]
    check(related == [f["event_ids"] for f in report["findings"]],
          "each finding cites the report's proving events")
    check([f["finding_info"]["types"][0] for f in findings] == [f["flag"] for f in report["findings"]],
          "each finding carries its flag")

    validate_all(validator(schema, 6003), events, "events.ocsf.jsonl")
    validate_all(validator(schema, 2004), findings, "findings.ocsf.jsonl")

    # The validator is not vacuous: a record missing a required attribute, or
    # carrying an attribute the class does not have, is refused.
    v = validator(schema, 6003)
    broken = dict(events[0])
    del broken["src_endpoint"]
    check(not v.is_valid(broken), "a record without src_endpoint is refused")
    extra = dict(events[0], not_an_ocsf_attribute=1)
    check(not v.is_valid(extra), "a record with an unknown attribute is refused")

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
