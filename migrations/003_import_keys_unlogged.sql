-- import_keys is a per-run cache for duplicate detection, emptied when each run ends: it need not
-- be crash-safe. UNLOGGED halves the write cost of every imported row. After a Postgres crash the
-- table comes back empty; loaded data is unaffected, only repeats of keys loaded before the crash
-- would go unreported for runs that were in flight.
ALTER TABLE import_keys SET UNLOGGED;
