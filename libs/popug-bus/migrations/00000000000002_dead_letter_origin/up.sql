-- Where a dead-lettered message came from, as the consumer saw it on its
-- first failure: the routing key it was published with and the broker user
-- that published it (the AMQP user_id, which the broker validates). A
-- replayed message travels to the live queue under the queue's name and as
-- the replaying service's user; the consumer checks it against these
-- instead, once the row's body proves it is the same message. NULL when
-- unknown (and for rows recorded before they were kept).
ALTER TABLE failed_events ADD COLUMN routing_key TEXT;
ALTER TABLE failed_events ADD COLUMN user_id TEXT;
