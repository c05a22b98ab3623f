-- Appending a batch when several replicas write (agent-safe-postgres): the chain fields are
-- computed on the server, under the head's row lock, in one statement, so the head is held for
-- the time of that statement instead of a transaction's round trips and a WAL flush.
--
-- The statement commits without waiting for its WAL flush (`synchronous_commit` off for its
-- own transaction), so the head's lock is released at once and the next replica's batch can
-- chain on. The caller then commits a write to `audit_flush` with `synchronous_commit` on
-- before it answers anyone: WAL is flushed in order, so that flush covers the batch (and
-- every batch chained before it). No client is told of an entry before it is durable; after a
-- server crash, a batch not yet flushed is gone together with everything after it in the WAL.
--
-- The line is built exactly as agent_safe_audit::PreparedEntry::chain builds it, from the
-- same four parts (ASCII: canonical JSON escapes everything else); a test compares the bytes
-- with the file log's:
--   body       = '"' || prev_hash || '"' || p3 || ', "seq": ' || seq || p4
--   entry_hash = hex(sha256(p1 || p2 || body))
--   line       = p1 || '"entry_hash": "' || entry_hash || '", ' || p2 || body
CREATE FUNCTION agent_safe_append(
    p1 text[], p2 text[], p3 text[], p4 text[],
    event_ids text[], event_types text[], correlation_ids text[], original_ids text[]
) RETURNS TABLE (appended_seq bigint, appended_hash text)
LANGUAGE plpgsql AS $$
DECLARE
    head_seq bigint;
    prev text;
    body text;
    n integer := coalesce(array_length(p1, 1), 0);
    seqs bigint[];
    hashes text[];
    lines text[];
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT h.seq, h.entry_hash INTO head_seq, prev FROM audit_head h FOR UPDATE;
    FOR i IN 1 .. n LOOP
        head_seq := head_seq + 1;
        body := '"' || prev || '"' || p3[i] || ', "seq": ' || head_seq::text || p4[i];
        prev := encode(sha256(convert_to(p1[i] || p2[i] || body, 'UTF8')), 'hex');
        seqs[i] := head_seq;
        hashes[i] := prev;
        lines[i] := p1[i] || '"entry_hash": "' || prev || '", ' || p2[i] || body;
    END LOOP;
    IF n > 0 THEN
        INSERT INTO audit_log (seq, event_id, event_type, correlation_id, original_id,
                               entry_hash, line)
            SELECT * FROM unnest(seqs, event_ids, event_types, correlation_ids, original_ids,
                                 hashes, lines);
        UPDATE audit_head SET seq = head_seq, entry_hash = prev;
    END IF;
    RETURN QUERY SELECT * FROM unnest(seqs, hashes);
END
$$;

-- What the caller commits (synchronously) after `agent_safe_append` to flush the WAL: one row
-- per server process (`pg_backend_pid()`), so concurrent appenders never wait for each other
-- here and their flushes are grouped by the server.
CREATE TABLE audit_flush (
    pid     integer PRIMARY KEY,
    flushes bigint NOT NULL
);
