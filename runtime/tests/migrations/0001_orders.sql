-- The table the outbox tests write next to their messages.
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    item text NOT NULL
);
