-- 0002_service_clock: the virtual service clock's offset from wall time, one
-- row, shared by every node on the database (see package vclock).
CREATE TABLE service_clock (
    id        integer PRIMARY KEY CHECK (id = 1),
    offset_ns bigint NOT NULL
);
