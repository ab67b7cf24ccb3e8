"""time-ordered postings of common search keys (issue 19)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-14 10:00:00

A search for a common term walks the tickets newest first and stops after a page; when the
newest matches sit behind thousands of newer tickets that do not match, that walk reads them
all (40 ms at a million tickets), and the GIN index, the other plan, decodes every match before
it can sort them (250 ms). These tables are the missing index: for each *common* search key, the
newest tickets containing it, in time order, so such a search reads its page and stops.

- A key is a lexeme's first four characters (``left(lexeme, 4)``): a CJK unigram or bigram is
  its own key, an English word shares the key of its first four letters, so one key serves
  both an exact word and a prefix (``refun`` and ``refund`` walk ``refu``). The walk rechecks
  the full query on each ticket, so a key's extra words cost a probe, never a wrong answer.
- ``ticket_search_keys``: the keys kept: those of common searches agents ran
  (``tickets.search_index``; every posting costs intake a write, so only searched keys have
  them). ``filling`` until ticket-svc has written the postings
  of the tickets that existed when the key was added; ``ready`` after. ``horizon``: the id of a
  transaction that ran after the key was committed; the fill waits until every transaction
  up to it has ended, so a ticket written by one that did not see the key yet is in the fill's
  snapshot (no table lock, no stalled writer; ticket-svc writes tickets in READ COMMITTED). ``covered_since``: the postings
  are complete for tickets created at or after it (NULL: for all tickets); older postings are
  trimmed so each key keeps about ``TICKET_SEARCH_POSTINGS_PER_KEY`` of them, and no trigger
  writes one below it (the cover only moves forward).
- ``ticket_search_postings``: (key, created_at, ticket_id). Triggers keep it exact for every
  key in the set whatever the write path: insert (statement trigger, one statement for a bulk
  insert), a change of the search column (a message, a subject change, a merge, an erasure;
  keys gone from the ticket lose its posting) and a hard delete.
- ``ix_tickets_search`` (GIN) keeps a pending list of at most 256 kB instead of 4 MB: every
  GIN search reads the whole pending list, and after a burst of intake the default's 2-4 MB
  cost each rare-term search 3.5 ms (262 pages) even with no match; the smaller list is merged
  more often by the inserts, at no intake cost measurable here (search.lua: 313-357 -> 418-504
  req/s on 7,000 fresh tickets).
"""
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE ticket_search_keys (
    key text PRIMARY KEY,
    state text NOT NULL DEFAULT 'filling' CHECK (state IN ('filling', 'ready')),
    covered_since timestamptz,
    horizon xid8,
    added_at timestamptz NOT NULL DEFAULT now()
)""")
    op.execute("""
CREATE TABLE ticket_search_postings (
    key text NOT NULL,
    created_at timestamptz NOT NULL,
    ticket_id uuid NOT NULL,
    PRIMARY KEY (key, created_at, ticket_id)
)""")
    op.execute("""
CREATE FUNCTION ticket_search_keys_of(doc tsvector) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT left(lexeme, 4)), '{}') FROM unnest(tsvector_to_array(doc)) AS lexeme
$$""")
    op.execute("""
CREATE FUNCTION ticket_search_postings_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ticket_search_keys) THEN
        RETURN NULL;  -- no key searched yet: not even the vector's keys are worth computing
    END IF;
    INSERT INTO ticket_search_postings (key, created_at, ticket_id)
    SELECT k.key, n.created_at, n.id
    FROM new_tickets n
    CROSS JOIN LATERAL unnest(ticket_search_keys_of(n.search)) AS own(key)
    JOIN ticket_search_keys k ON k.key = own.key
    WHERE n.created_at >= coalesce(k.covered_since, '-infinity')
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$""")
    op.execute("""
CREATE FUNCTION ticket_search_postings_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_keys text[];
    new_keys text[];
    removed text[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ticket_search_keys) THEN
        RETURN NULL;  -- no key, so no posting to keep (a key's removal took its postings)
    END IF;
    old_keys := ticket_search_keys_of(OLD.search);
    IF TG_OP = 'DELETE' THEN
        DELETE FROM ticket_search_postings
        WHERE key = ANY(old_keys) AND created_at = OLD.created_at AND ticket_id = OLD.id;
        RETURN NULL;
    END IF;
    new_keys := ticket_search_keys_of(NEW.search);
    IF OLD.created_at IS DISTINCT FROM NEW.created_at THEN
        removed := old_keys;  -- every posting moves to the new time
        old_keys := '{}';
    ELSE
        -- a message only adds lexemes: usually nothing is removed and one set difference says so
        removed := ARRAY(SELECT unnest(old_keys) EXCEPT SELECT unnest(new_keys));
        new_keys := ARRAY(SELECT unnest(new_keys) EXCEPT SELECT unnest(old_keys));
    END IF;
    IF cardinality(removed) > 0 THEN
        DELETE FROM ticket_search_postings
        WHERE key = ANY(removed) AND created_at = OLD.created_at AND ticket_id = OLD.id;
    END IF;
    IF cardinality(new_keys) > 0 THEN
        INSERT INTO ticket_search_postings (key, created_at, ticket_id)
        SELECT k.key, NEW.created_at, NEW.id FROM ticket_search_keys k
        WHERE k.key = ANY(new_keys) AND NEW.created_at >= coalesce(k.covered_since, '-infinity')
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$""")
    op.execute("CREATE TRIGGER tickets_search_postings_added AFTER INSERT ON tickets "
               "REFERENCING NEW TABLE AS new_tickets FOR EACH STATEMENT EXECUTE FUNCTION ticket_search_postings_added()")
    op.execute("CREATE TRIGGER tickets_search_postings_changed AFTER UPDATE OF search, created_at ON tickets "
               "FOR EACH ROW WHEN (OLD.search IS DISTINCT FROM NEW.search OR OLD.created_at IS DISTINCT FROM NEW.created_at) "
               "EXECUTE FUNCTION ticket_search_postings_changed()")
    op.execute("CREATE TRIGGER tickets_search_postings_deleted AFTER DELETE ON tickets "
               "FOR EACH ROW EXECUTE FUNCTION ticket_search_postings_changed()")
    op.execute("ALTER INDEX ix_tickets_search SET (gin_pending_list_limit = 256)")


def downgrade() -> None:
    op.execute("ALTER INDEX ix_tickets_search RESET (gin_pending_list_limit)")
    op.execute("DROP TRIGGER tickets_search_postings_deleted ON tickets")
    op.execute("DROP TRIGGER tickets_search_postings_changed ON tickets")
    op.execute("DROP TRIGGER tickets_search_postings_added ON tickets")
    op.execute("DROP FUNCTION ticket_search_postings_changed()")
    op.execute("DROP FUNCTION ticket_search_postings_added()")
    op.execute("DROP FUNCTION ticket_search_keys_of(tsvector)")
    op.execute("DROP TABLE ticket_search_postings")
    op.execute("DROP TABLE ticket_search_keys")
