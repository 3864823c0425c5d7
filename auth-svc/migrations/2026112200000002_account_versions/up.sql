-- A version per account, counted up by every change and carried in its
-- events, so replicas order changes by it rather than by anyone's clock.
ALTER TABLE accounts ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
