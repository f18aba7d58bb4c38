#!/usr/bin/env python3
"""An Athena stand-in that runs the SQL: the test endpoint of tests/athena.rs.

Contract (what the Rust tests rely on):
- AWS JSON 1.1 on POST / (X-Amz-Target `AmazonAthena.<Op>`, routed on the text
  after the last `.`): StartQueryExecution, GetQueryExecution, GetQueryResults,
  StopQueryExecution, GetTableMetadata, GetWorkGroup.
- DDL is executed: `CREATE DATABASE` and AWS's `CREATE EXTERNAL TABLE` (parsed
  with sqlglot's Athena dialect) register the table, its columns, its partition
  columns and its TBLPROPERTIES (partition projection, storage.location.template).
- A SELECT is translated with sqlglot (athena -> duckdb) and executed by DuckDB
  over a table holding only the partitions the query names, built from the trail
  files the way the Hive JsonSerDe reads them: keys matched without case to the
  lower-case columns, nested objects of STRING columns kept as JSON text.
- Partition projection is enforced like Athena: an `injected` column without a
  static equality/IN predicate fails with CONSTRAINT_VIOLATION; a query that
  names no value of an `enum` or `date` column (so would read every partition
  of it) fails too (STANDIN_UNBOUNDED_PARTITIONS), as does any predicate on a
  partition column under an OR. DataScannedInBytes is the size of the partition
  files read. A corrupt file fails the whole query (HIVE_CURSOR_ERROR).
- States go QUEUED -> RUNNING -> SUCCEEDED over a few polls; results come in
  pages of at most 1000 rows, the header row first on the first page.
- S3 ListObjectsV2 (GET /<bucket>?list-type=2) over the same folders, for the
  tool's cost estimate.
- Test control: POST /_standin/reset, /_standin/bucket {"bucket","root"},
  /_standin/mode {...}; GET /_standin/log (every query received, what it read).
  Modes: fail (next query FAILED with that reason), bounce (RUNNING -> QUEUED once),
  hold (stay RUNNING until stopped), throttle {"Op": n}, too_many n,
  page_rows n, s3_page n, no_metadata, queued_polls n, running_polls n.
Anything else answers 400 UnknownOperationException.
"""

import argparse
import datetime
import gzip
import itertools
import json
import os
import sys
import tempfile
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape as xml_escape

import duckdb
import sqlglot
from sqlglot import exp

LOCK = threading.RLock()
STATE = {}


def reset():
    with LOCK:
        STATE.clear()
        STATE.update(
            buckets={},
            databases={"default"},
            tables={},
            executions={},
            log=[],
            mode={},
        )


reset()


class QueryError(Exception):
    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type
        self.message = message


# ----------------------------------------------------------------- tables


def ddl_type(dt):
    """A sqlglot DataType -> a small tree: ('string'|'struct'|'array'|'map', ...)."""
    t = dt.this
    if t == exp.DataType.Type.STRUCT:
        return ("struct", [(f.name.lower(), ddl_type(f.args["kind"])) for f in dt.expressions])
    if t == exp.DataType.Type.ARRAY:
        return ("array", ddl_type(dt.expressions[0]))
    if t == exp.DataType.Type.MAP:
        return ("map", ddl_type(dt.expressions[0]), ddl_type(dt.expressions[1]))
    return ("string",)


def duck_type(t):
    kind = t[0]
    if kind == "struct":
        return "STRUCT(" + ", ".join(f'"{n}" {duck_type(s)}' for n, s in t[1]) + ")"
    if kind == "array":
        return duck_type(t[1]) + "[]"
    if kind == "map":
        return f"MAP({duck_type(t[1])}, {duck_type(t[2])})"
    return "VARCHAR"


def literal(node):
    return node.this if isinstance(node, exp.Literal) else node.name


def register_table(create, context_db):
    schema = create.this
    table = schema.this
    db = (table.db or context_db or "default").lower()
    name = table.name.lower()
    if db not in STATE["databases"]:
        raise QueryError("SCHEMA_NOT_FOUND", f"Schema '{db}' does not exist")
    columns = [(c.name.lower(), ddl_type(c.args["kind"])) for c in schema.expressions]
    props, partitions, location = {}, [], None
    for p in create.args["properties"].expressions:
        if isinstance(p, exp.PartitionedByProperty):
            partitions = [c.name.lower() for c in p.this.expressions]
        elif isinstance(p, exp.LocationProperty):
            location = literal(p.this)
        elif isinstance(p, exp.RowFormatSerdeProperty):
            props["serde.serialization.lib"] = literal(p.this)
        elif type(p) is exp.Property:
            props[p.name] = p.text("value")
    if location:
        props["location"] = location
    STATE["tables"][(db, name)] = dict(columns=columns, partitions=partitions, props=props)


# ------------------------------------------------------------ projection


def conjuncts(where):
    if where is None:
        return []
    cond = where.this
    while isinstance(cond, exp.Paren):
        cond = cond.this
    if isinstance(cond, exp.And):
        out = []
        for c in cond.flatten():
            while isinstance(c, exp.Paren):
                c = c.this
            out.append(c)
        return out
    return [cond]


def partition_values(select, table):
    """Values named for each partition column by static top-level predicates."""
    named = {}
    where = select.args.get("where")
    for c in conjuncts(where):
        col, values = None, None
        if isinstance(c, exp.In) and isinstance(c.this, exp.Column):
            if all(isinstance(v, exp.Literal) and v.is_string for v in c.expressions):
                col, values = c.this.name.lower(), [v.this for v in c.expressions]
        elif isinstance(c, exp.EQ):
            a, b = c.this, c.expression
            if isinstance(b, exp.Column) and isinstance(a, exp.Literal):
                a, b = b, a
            if isinstance(a, exp.Column) and isinstance(b, exp.Literal) and b.is_string:
                col, values = a.name.lower(), [b.this]
        if col in table["partitions"]:
            named[col] = sorted(set(named[col]) & set(values)) if col in named else sorted(set(values))
    # A partition column anywhere else (under OR, NOT, a function) is not a static predicate.
    if where is not None:
        for c in conjuncts(where):
            direct = (isinstance(c, (exp.In, exp.EQ))) and any(
                isinstance(x, exp.Column) and x.name.lower() in table["partitions"]
                for x in (c.this, c.args.get("expression"))
            )
            if direct:
                continue
            for colref in c.find_all(exp.Column):
                if colref.name.lower() in table["partitions"]:
                    raise QueryError(
                        "STANDIN_UNBOUNDED_PARTITIONS",
                        f"partition column {colref.name} appears in a predicate that is not a static equality "
                        "or IN list at the top of the WHERE clause: projection cannot bound it",
                    )
    return named


def project(table, named, today):
    props = table["props"]
    per_column = []
    for col in table["partitions"]:
        kind = props.get(f"projection.{col}.type", "").strip().lower()
        values = named.get(col)
        if kind == "injected":
            if not values:
                raise QueryError(
                    "CONSTRAINT_VIOLATION",
                    f"CONSTRAINT_VIOLATION: For the injected projected partition column {col}, the WHERE clause "
                    "must contain only static equality conditions, and at least one such condition must be present.",
                )
        elif kind == "enum":
            allowed = [v for v in props.get(f"projection.{col}.values", "").split(",") if v]
            if values is None:
                raise QueryError(
                    "STANDIN_UNBOUNDED_PARTITIONS",
                    f"the query names no {col}: it would read all {len(allowed)} enum partitions of it",
                )
            values = [v for v in values if v in allowed]
        elif kind == "date":
            if values is None:
                raise QueryError(
                    "STANDIN_UNBOUNDED_PARTITIONS",
                    f"the query names no {col}: it would read every day of the projection's range",
                )
            first, last = (props.get(f"projection.{col}.range", "") + ",").split(",")[:2]
            lo = datetime.datetime.strptime(first.strip(), "%Y/%m/%d").date()
            hi = today if last.strip().upper() == "NOW" else datetime.datetime.strptime(last.strip(), "%Y/%m/%d").date()
            kept = []
            for v in values:
                try:
                    d = datetime.datetime.strptime(v, "%Y/%m/%d").date()
                except ValueError:
                    continue
                if lo <= d <= hi:
                    kept.append(v)
            values = kept
        elif values is None:
            raise QueryError("STANDIN_UNBOUNDED_PARTITIONS", f"the query names no {col}")
        per_column.append(values)
    return [dict(zip(table["partitions"], combo)) for combo in itertools.product(*per_column)]


def local_folder(url):
    if not url.startswith("s3://"):
        raise QueryError("INVALID_LOCATION", f"not an S3 location: {url}")
    bucket, _, key = url[len("s3://"):].partition("/")
    root = STATE["buckets"].get(bucket)
    if root is None:
        raise QueryError("HIVE_FILESYSTEM_ERROR", f"bucket {bucket} does not exist")
    return os.path.join(root, key)


# --------------------------------------------------------- the JsonSerDe


def hive_string(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return str(v)


def hive_value(v, t):
    if v is None:
        return None
    kind = t[0]
    if kind == "string":
        return hive_string(v)
    if kind == "struct":
        if not isinstance(v, dict):
            return None
        lower = {k.lower(): x for k, x in v.items()}
        return {n: hive_value(lower.get(n), s) for n, s in t[1]}
    if kind == "array":
        if not isinstance(v, list):
            return None
        return [hive_value(x, t[1]) for x in v]
    if kind == "map":
        if not isinstance(v, dict):
            return None
        return {str(k): hive_value(x, t[2]) for k, x in v.items()}
    return None


def read_file(path, url):
    with open(path, "rb") as f:
        data = f.read()
    try:
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        doc = json.loads(data.decode("utf-8"))
    except Exception as e:  # noqa: BLE001 - Athena fails the query on any of these
        raise QueryError("HIVE_CURSOR_ERROR", f"HIVE_CURSOR_ERROR: {type(e).__name__} reading {url}: {e}")
    records = doc.get("Records") if isinstance(doc, dict) else None
    if not isinstance(records, list):
        raise QueryError("HIVE_CURSOR_ERROR", f"HIVE_CURSOR_ERROR: {url} holds no Records array")
    return records


# ------------------------------------------------------------- executing


def run_select(select, sql, context_db, log):
    tables = list(select.find_all(exp.Table))
    if len(tables) != 1:
        raise QueryError("NOT_SUPPORTED", "the stand-in runs queries over exactly one table")
    t = tables[0]
    key = ((t.db or context_db or "default").lower(), t.name.lower())
    table = STATE["tables"].get(key)
    if table is None:
        raise QueryError("TABLE_NOT_FOUND", f"line 1:1: Table 'awsdatacatalog.{key[0]}.{key[1]}' does not exist")
    named = partition_values(select, table)
    parts = project(table, named, datetime.datetime.now(datetime.timezone.utc).date())
    template = table["props"].get("storage.location.template")
    if not template:
        raise QueryError("NOT_SUPPORTED", "the stand-in needs storage.location.template")
    rows, scanned, files = [], 0, []
    columns = table["columns"]
    for p in parts:
        url = template
        for k, v in p.items():
            url = url.replace("${" + k + "}", v)
        folder = local_folder(url)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                continue
            scanned += os.path.getsize(path)
            files.append(url.rstrip("/") + "/" + name)
            for r in read_file(path, url.rstrip("/") + "/" + name):
                if not isinstance(r, dict):
                    continue
                lower = {k.lower(): v for k, v in r.items()}
                row = {n: hive_value(lower.get(n), ty) for n, ty in columns}
                row.update(p)
                rows.append(row)
    log.update(partitions=parts, files=len(files), bytes=scanned)
    con = duckdb.connect()
    try:
        con.execute(f'CREATE SCHEMA "{key[0]}"')
        defs = [f'"{n}" {duck_type(ty)}' for n, ty in columns] + [f'"{c}" VARCHAR' for c in table["partitions"]]
        con.execute(f'CREATE TABLE "{key[0]}"."{key[1]}" ({", ".join(defs)})')
        if rows:
            with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False) as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False))
                    f.write("\n")
                tmp = f.name
            try:
                cols = {n: duck_type(ty) for n, ty in columns}
                cols.update({c: "VARCHAR" for c in table["partitions"]})
                con.execute(
                    f'INSERT INTO "{key[0]}"."{key[1]}" SELECT * FROM read_json(?, columns=?, '
                    "format='newline_delimited', maximum_object_size=536870912)",
                    [tmp, cols],
                )
            finally:
                os.unlink(tmp)
        duck_sql = sqlglot.transpile(sql, read="athena", write="duckdb")[0]
        log["duckdb"] = duck_sql
        cur = con.execute(duck_sql)
        names = [d[0] for d in cur.description]
        result = cur.fetchall()
    except duckdb.Error as e:
        raise QueryError("GENERIC_USER_ERROR", f"duckdb: {e}")
    finally:
        con.close()
    return names, [[hive_string(v) for v in r] for r in result], scanned


def execute(ex):
    sql, context_db = ex["query"], ex["database"]
    log = ex["log"]
    try:
        try:
            stmts = sqlglot.parse(sql, read="athena")
        except sqlglot.errors.ParseError as e:
            raise QueryError("SYNTAX_ERROR", f"line 1:1: {str(e)[:300]}")
        if len(stmts) != 1 or stmts[0] is None:
            raise QueryError("SYNTAX_ERROR", "exactly one statement is allowed")
        st = stmts[0]
        if isinstance(st, exp.Create) and st.kind in ("DATABASE", "SCHEMA"):
            ex["statement_type"] = "DDL"
            with LOCK:
                STATE["databases"].add(st.this.name.lower())
            result = ([], [], 0)
        elif isinstance(st, exp.Create) and st.kind == "TABLE":
            ex["statement_type"] = "DDL"
            with LOCK:
                register_table(st, context_db)
            result = ([], [], 0)
        elif isinstance(st, exp.Select):
            ex["statement_type"] = "DML"
            with LOCK:
                result = run_select(st, sql, context_db, log)
        else:
            raise QueryError("NOT_SUPPORTED", f"the stand-in does not run {type(st).__name__}")
        with LOCK:
            ex["columns"], ex["rows"], ex["bytes"] = result
            ex["done"] = ("SUCCEEDED", None, None)
    except QueryError as e:
        message = e.message if e.message.startswith(e.error_type) else f"{e.error_type}: {e.message}"
        with LOCK:
            ex["done"] = ("FAILED", message, e.error_type)
            log["error"] = message
    except Exception as e:  # noqa: BLE001 - a stand-in bug is a failed query, named
        with LOCK:
            ex["done"] = ("FAILED", f"INTERNAL_ERROR_QUERY_ENGINE: {type(e).__name__}: {e}", "INTERNAL")
            log["error"] = repr(e)


def state_of(ex):
    """The state this poll reports (polls advance it)."""
    if ex.get("final"):
        return ex["final"]
    ex["polls"] += 1
    n = ex["polls"]
    plan = ex["plan"]
    if n <= len(plan):
        return plan[n - 1]
    if ex.get("hold"):
        return "RUNNING"
    if ex.get("done") is None:
        return "RUNNING"
    state, reason, etype = ex["done"]
    if ex.get("fail"):
        state, reason, etype = "FAILED", ex["fail"], "STANDIN_INJECTED"
    ex["final"] = state
    ex["reason"] = reason
    ex["error_type"] = etype
    return state


# ----------------------------------------------------------------- server


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/x-amz-json-1.1", headers=None):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, code, message):
        self.reply(status, json.dumps({"__type": code, "message": message, "Message": message}))

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/_standin/log":
            with LOCK:
                return self.reply(200, json.dumps(STATE["log"]), "application/json")
        q = urllib.parse.parse_qs(url.query)
        parts = url.path.strip("/").split("/", 1)
        if q.get("list-type") == ["2"] and len(parts) == 1 and parts[0]:
            return self.list_objects(parts[0], q)
        self.error(400, "UnknownOperationException", f"GET {url.path} is not served by the Athena stand-in")

    def list_objects(self, bucket, q):
        root = STATE["buckets"].get(bucket)
        if root is None:
            body = f"<Error><Code>NoSuchBucket</Code><Message>no bucket {xml_escape(bucket)}</Message></Error>"
            return self.reply(404, body, "application/xml")
        prefix = q.get("prefix", [""])[0]
        delim = q.get("delimiter", [""])[0]
        start_after = q.get("start-after", [""])[0]
        token = q.get("continuation-token", [""])[0]
        with LOCK:
            page = int(STATE["mode"].get("s3_page", 1000))
        max_keys = min(int(q.get("max-keys", ["1000"])[0]), page)
        keys = []
        for dirpath, _, names in os.walk(root):
            for n in names:
                k = os.path.relpath(os.path.join(dirpath, n), root).replace(os.sep, "/")
                if k.startswith(prefix):
                    keys.append(k)
        keys.sort()
        after = token or start_after
        entries, prefixes = [], []
        for k in keys:
            if after and k <= after:
                continue
            if delim:
                rest = k[len(prefix):]
                if delim in rest:
                    cp = prefix + rest.split(delim, 1)[0] + delim
                    if cp not in prefixes and not (after and cp <= after):
                        prefixes.append(cp)
                        entries.append(("p", cp))
                    continue
            entries.append(("k", k))
        truncated = len(entries) > max_keys
        entries = entries[:max_keys]
        out = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
               "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
               f"<Name>{xml_escape(bucket)}</Name><Prefix>{xml_escape(prefix)}</Prefix>",
               f"<MaxKeys>{max_keys}</MaxKeys><KeyCount>{len(entries)}</KeyCount>",
               f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"]
        if start_after:
            out.append(f"<StartAfter>{xml_escape(start_after)}</StartAfter>")
        for kind, k in entries:
            if kind == "k":
                size = os.path.getsize(os.path.join(root, k))
                out.append(f"<Contents><Key>{xml_escape(k)}</Key><LastModified>2025-01-01T00:00:00.000Z</LastModified>"
                           f"<ETag>&quot;0&quot;</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>")
            else:
                out.append(f"<CommonPrefixes><Prefix>{xml_escape(k)}</Prefix></CommonPrefixes>")
        if truncated:
            out.append(f"<NextContinuationToken>{xml_escape(entries[-1][1])}</NextContinuationToken>")
        out.append("</ListBucketResult>")
        with LOCK:
            STATE["log"].append({"s3": "ListObjectsV2", "prefix": prefix, "start_after": start_after, "token": token})
        self.reply(200, "".join(out), "application/xml")

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        raw = self.body()
        if url.path.startswith("/_standin/"):
            return self.control(url.path[len("/_standin/"):], json.loads(raw or b"{}"))
        target = self.headers.get("X-Amz-Target", "")
        op = target.rsplit(".", 1)[-1]
        if not target.startswith("AmazonAthena"):
            return self.error(400, "UnknownOperationException", f"the Athena stand-in does not serve {target or url.path}")
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            return self.error(400, "SerializationException", "body is not JSON")
        with LOCK:
            mode = STATE["mode"]
            throttle = mode.get("throttle", {})
            if throttle.get(op, 0) > 0:
                throttle[op] -= 1
                return self.error(400, "ThrottlingException", "Rate exceeded")
            if op == "StartQueryExecution" and mode.get("too_many", 0) > 0:
                mode["too_many"] -= 1
                return self.error(400, "TooManyRequestsException", "You have exceeded the limit for the number of queries you can run concurrently")
        handler = getattr(self, "op_" + op, None)
        if handler is None:
            return self.error(400, "UnknownOperationException", f"{op} is not implemented by the stand-in")
        handler(req)

    def control(self, what, req):
        with LOCK:
            if what == "reset":
                reset()
            elif what == "bucket":
                STATE["buckets"][req["bucket"]] = req["root"]
            elif what == "mode":
                STATE["mode"] = req
            else:
                return self.error(404, "NotFound", what)
        self.reply(200, "{}", "application/json")

    def op_StartQueryExecution(self, req):
        sql = req.get("QueryString", "")
        if not sql or len(sql.encode("utf-8")) > 262144:
            return self.error(400, "InvalidRequestException", "QueryString must be 1 to 262144 bytes")
        ctx = req.get("QueryExecutionContext") or {}
        with LOCK:
            mode = STATE["mode"]
            token = req.get("ClientRequestToken")
            for old in STATE["executions"].values():
                if token and old.get("token") == token:
                    return self.reply(200, json.dumps({"QueryExecutionId": old["id"]}))
            qid = str(uuid.uuid4())
            plan = ["QUEUED"] * int(mode.get("queued_polls", 1)) + ["RUNNING"] * int(mode.get("running_polls", 1))
            if mode.get("bounce"):
                plan += ["QUEUED", "RUNNING"]
            log = {"id": qid, "query": sql, "workgroup": req.get("WorkGroup"), "database": ctx.get("Database"),
                   "catalog": ctx.get("Catalog"), "output": (req.get("ResultConfiguration") or {}).get("OutputLocation")}
            ex = {"id": qid, "token": token, "query": sql, "database": (ctx.get("Database") or "default").lower(),
                  "polls": 0, "plan": plan, "done": None, "hold": bool(mode.get("hold")),
                  "fail": mode.pop("fail", None), "log": log, "statement_type": "DML",
                  "columns": [], "rows": [], "bytes": 0, "reason": None, "error_type": None}
            STATE["executions"][qid] = ex
            STATE["log"].append(log)
        threading.Thread(target=execute, args=(ex,), daemon=True).start()
        self.reply(200, json.dumps({"QueryExecutionId": qid}))

    def find(self, req):
        ex = STATE["executions"].get(req.get("QueryExecutionId", ""))
        if ex is None:
            self.error(400, "InvalidRequestException", "QueryExecution not found")
        return ex

    def op_GetQueryExecution(self, req):
        with LOCK:
            ex = self.find(req)
            if ex is None:
                return
            state = state_of(ex)
            ex["log"]["state"] = state
            status = {"State": state, "SubmissionDateTime": 1.7e9}
            if state in ("FAILED", "CANCELLED"):
                status["StateChangeReason"] = ex["reason"] or ""
                if state == "FAILED":
                    status["AthenaError"] = {"ErrorCategory": 2, "ErrorType": 1000, "Retryable": False,
                                             "ErrorMessage": ex["reason"] or ""}
            body = {"QueryExecution": {
                "QueryExecutionId": ex["id"], "Query": ex["query"], "StatementType": ex["statement_type"],
                "Status": status, "WorkGroup": ex["log"].get("workgroup"),
                "QueryExecutionContext": {"Database": ex["database"]},
                "Statistics": {"DataScannedInBytes": ex["bytes"] if state in ("SUCCEEDED", "FAILED", "CANCELLED") else 0,
                               "EngineExecutionTimeInMillis": 1},
            }}
        self.reply(200, json.dumps(body))

    def op_GetQueryResults(self, req):
        with LOCK:
            ex = self.find(req)
            if ex is None:
                return
            if ex.get("final") != "SUCCEEDED":
                return self.error(400, "InvalidRequestException",
                                  f"Query has not yet finished. Current state: {ex.get('final') or 'RUNNING'}")
            max_rows = int(req.get("MaxResults") or 1000)
            if not 1 <= max_rows <= 1000:
                return self.error(400, "InvalidRequestException", "MaxResults must be 1 to 1000")
            max_rows = min(max_rows, int(STATE["mode"].get("page_rows", 1000)))
            all_rows = ([ex["columns"]] if ex["statement_type"] == "DML" and ex["columns"] else []) + ex["rows"]
            start = int(req.get("NextToken") or 0) if str(req.get("NextToken") or "0").isdigit() else 0
            page = all_rows[start:start + max_rows]
            body = {"ResultSet": {
                "Rows": [{"Data": [({} if v is None else {"VarCharValue": v}) for v in r]} for r in page],
                "ResultSetMetadata": {"ColumnInfo": [
                    {"CatalogName": "hive", "Name": n, "Label": n, "Type": "varchar", "Precision": 2147483647,
                     "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": True} for n in ex["columns"]]},
            }}
            if start + max_rows < len(all_rows):
                body["NextToken"] = str(start + max_rows)
            ex["log"]["result_pages"] = ex["log"].get("result_pages", 0) + 1
        self.reply(200, json.dumps(body))

    def op_StopQueryExecution(self, req):
        with LOCK:
            ex = self.find(req)
            if ex is None:
                return
            if not ex.get("final"):
                ex["final"] = "CANCELLED"
                ex["reason"] = "Query cancelled by user"
            ex["log"]["stopped"] = True
        self.reply(200, "{}")

    def op_GetTableMetadata(self, req):
        with LOCK:
            if STATE["mode"].get("no_metadata"):
                return self.error(400, "UnknownOperationException", "GetTableMetadata is not implemented")
            t = STATE["tables"].get((req.get("DatabaseName", "").lower(), req.get("TableName", "").lower()))
            if t is None:
                return self.error(400, "MetadataException", "Table not found")
            body = {"TableMetadata": {
                "Name": req["TableName"].lower(), "TableType": "EXTERNAL_TABLE",
                "Columns": [{"Name": n, "Type": duck_type(ty).lower()} for n, ty in t["columns"]],
                "PartitionKeys": [{"Name": c, "Type": "string"} for c in t["partitions"]],
                "Parameters": t["props"],
            }}
        self.reply(200, json.dumps(body))

    def op_GetWorkGroup(self, req):
        self.reply(200, json.dumps({"WorkGroup": {"Name": req.get("WorkGroup", "primary"), "State": "ENABLED"}}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"athena stand-in on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
