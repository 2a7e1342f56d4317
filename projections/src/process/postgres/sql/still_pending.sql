-- Which of the commands $1 are still pending: after a mark that skipped rows another
-- transaction held, the ones left to mark (a row that holder discarded is not).
SELECT command_id FROM {schema}.outbox WHERE command_id = ANY($1::uuid[]) AND state = 'pending'
