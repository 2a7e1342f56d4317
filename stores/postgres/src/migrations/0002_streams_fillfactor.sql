-- Room on each page of `streams` for the row's next version: every append updates its
-- stream's row, and with full pages (the default fillfactor, 100) half of those
-- updates found no room beside the old version and wrote a new index entry as well
-- (issue 22's flash sale). With a fifth of each new page left free, most are HOT
-- updates: the new version on the same page, no index write. Applies to pages written
-- from now on.
ALTER TABLE {schema}.streams SET (fillfactor = 80);
