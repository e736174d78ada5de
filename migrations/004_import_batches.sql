-- Cross-batch duplicate detection without writing every key twice. A row an import wrote carries
-- its batch's transaction id (xmin), so a key that conflicts with a row whose xmin is one of the
-- run's committed batches was already in the file. Each batch records its transaction id and row
-- range here, in the same transaction as its rows: a rolled-back batch leaves neither behind.
-- import_keys now only holds keys the run met but did not write (skipped or already present).
CREATE TABLE import_batches (
  run_id    text NOT NULL,
  xid       xid NOT NULL,
  first_row integer NOT NULL,
  last_row  integer NOT NULL
);
-- xid has no btree ordering; a hash index answers "which batch wrote this row" per conflict.
CREATE INDEX import_batches_xid_idx ON import_batches USING hash (xid);
