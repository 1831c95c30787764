"""The batch engine: the scoring model compiled into set-based queries.

It computes the pure engine's scorecards and firings for a whole event log
at once, on DuckDB (embedded) or on Spark.

- plan: the model compiled into DuckDB SQL (rule matching, limits, decay,
  sums, tags, fit) and the order of its steps
- sql: `where` conditions as SQL expressions over probes of property paths
- walk: stages and triggers as window functions, where the model allows it
- io: inputs (files, DuckDB and PostgreSQL tables), their checks, and
  `score_batch`
- cli: `leadscore score --engine duckdb` and its outputs
- spark: the Spark engine (`score_spark`)
"""
