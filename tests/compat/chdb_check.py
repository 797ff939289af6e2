#!/usr/bin/env python3
"""Runs Hypercare's SQL through the modern ClickHouse engine embedded in chdb.

Reads a JSON list of {"origin": ..., "sql": ...} on stdin (the migrations first,
then every read query with example parameters), runs each in one chdb session in
a fresh database, and prints one line per statement. Exits 1 if any fails, 3 if
chdb is not installed. Called by the `compat` integration test; see
docs/clickhouse-compat.md.
"""
import json
import sys
import tempfile

try:
    import chdb
    from chdb import session
except ImportError:
    print("chdb is not installed: pip install chdb (tests/run does it)", file=sys.stderr)
    sys.exit(3)


def main() -> int:
    statements = json.load(sys.stdin)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="hypercare-chdb-") as path:
        s = session.Session(path)
        s.query("CREATE DATABASE IF NOT EXISTS hypercare_compat")
        s.query("USE hypercare_compat")
        print(f"engine: {s.query('SELECT version()', 'CSV').bytes().decode().strip()}")
        for statement in statements:
            try:
                s.query(statement["sql"], "CSV")
                print(f"ok   {statement['origin']}")
            except Exception as error:  # chdb raises its own error type per version
                failures += 1
                first_line = str(error).strip().splitlines()[0]
                print(f"FAIL {statement['origin']}: {first_line}\n     {statement['sql']}")
        s.close()
    print(f"chdb {chdb.__version__}: {len(statements) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
