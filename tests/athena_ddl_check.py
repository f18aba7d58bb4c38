#!/usr/bin/env python3
"""Check the DDL `athena-table` prints: one statement that sqlglot's Hive and
Athena dialects parse as CREATE EXTERNAL TABLE, naming AWS's SerDe, input and
output formats, the partition columns, the projection and the location
template. Exit 1 with the reason otherwise (run by .ci/run)."""

import sys

import sqlglot
from sqlglot import exp


def main(path):
    text = open(path, encoding="utf-8").read()
    for dialect in ("hive", "athena"):
        stmts = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
        assert len(stmts) == 1, f"{dialect}: {len(stmts)} statements"
        create = stmts[0]
        assert isinstance(create, exp.Create) and create.kind == "TABLE", f"{dialect}: not CREATE TABLE"
        props, serde = {}, None
        for p in create.args["properties"].expressions:
            # The specific property classes derive from exp.Property: test them first.
            if isinstance(p, exp.PartitionedByProperty):
                parts = [c.name for c in p.this.expressions]
                assert parts == ["account", "region", "timestamp"], parts
            elif isinstance(p, exp.RowFormatSerdeProperty):
                serde = p.this.this if isinstance(p.this, exp.Literal) else p.this.name
            elif type(p) is exp.Property:
                props[p.name] = p.text("value")
        assert serde == "org.apache.hive.hcatalog.data.JsonSerDe", f"{dialect}: SerDe {serde!r}"
        assert any(isinstance(p, exp.ExternalProperty) for p in create.args["properties"].expressions)
        columns = [c.name for c in create.this.expressions]
        for c in ("eventversion", "useridentity", "eventtime", "eventsource", "eventname", "requestparameters",
                  "responseelements", "eventid", "recipientaccountid", "tlsdetails"):
            assert c in columns, c
        assert props.get("projection.enabled") == "true"
        assert props.get("projection.account.type") in ("enum", "injected")
        assert props.get("projection.region.type") == "enum"
        assert props.get("projection.timestamp.type") == "date"
        assert props.get("projection.timestamp.format") == "yyyy/MM/dd"
        assert props.get("projection.timestamp.range", "").endswith(",NOW")
        assert props.get("storage.location.template", "").endswith("/${account}/CloudTrail/${region}/${timestamp}")
    for needle in ("ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'",
                   "STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'",
                   "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'"):
        assert needle in text, needle
    print(f"{path}: parses as Athena DDL; account projection {props['projection.account.type']}")


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except AssertionError as e:
        print(f"athena-table DDL check failed: {e}", file=sys.stderr)
        sys.exit(1)
