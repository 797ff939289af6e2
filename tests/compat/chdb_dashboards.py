#!/usr/bin/env python3
"""Runs the dashboards' SQL through the modern ClickHouse engine embedded in chdb.

Reads one JSON object on stdin: {"schema": [sql, ...], "seed": [sql, ...],
"queries": [{"origin": ..., "sql": ...}, ...]}. Applies the schema and the seed
(INSERT statements holding the rows of the 18.16 test database) in a fresh
database, then runs each query and prints one JSON line per query:
{"origin", "ok", "error", "columns": [[name, type], ...], "data": [[...], ...]}. Exits 3 if
chdb is not installed. Called by the `dashboards` integration test; see
docs/grafana.md.
"""
import json
import sys
import tempfile

try:
    from chdb import session
except ImportError:
    print("chdb is not installed: pip install chdb (tests/run does it)", file=sys.stderr)
    sys.exit(3)


def main() -> int:
    job = json.load(sys.stdin)
    with tempfile.TemporaryDirectory(prefix="hypercare-chdb-dash-") as path:
        s = session.Session(path)
        s.query("CREATE DATABASE IF NOT EXISTS hypercare_dashboards")
        s.query("USE hypercare_dashboards")
        for sql in job["schema"] + job["seed"]:
            s.query(sql)
        for query in job["queries"]:
            line = {"origin": query["origin"], "ok": True, "error": "", "columns": [], "data": []}
            try:
                answer = json.loads(s.query(query["sql"], "JSONCompact").bytes() or b"{}")
                line["columns"] = [[c["name"], c["type"]] for c in answer.get("meta", [])]
                line["data"] = answer.get("data", [])
            except Exception as error:  # chdb raises its own error type per version
                line["ok"] = False
                line["error"] = str(error).strip().splitlines()[0]
            print(json.dumps(line))
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
