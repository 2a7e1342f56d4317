-- Room on each page of `instances` for the row's next version: every reaction updates
-- its instance's row, and with full pages (the default fillfactor, 100) nine in ten of
-- those updates wrote new index entries as well (issue 22's flash sale). A fifth of
-- each new page left free lets an update that keeps the status be a HOT update (one
-- that changes the status still writes the status index). Applies to pages written
-- from now on.
ALTER TABLE {schema}.instances SET (fillfactor = 80);
