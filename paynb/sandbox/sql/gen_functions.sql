-- Helpers for the synthetic data generator (sandbox schema only; never part of pay-db).
-- Pseudo-randomness is a hash of (seed, tag, n): the same inputs give the same value on every run,
-- with no state and no per-row Python.

-- uniform in [0, 1)
CREATE OR REPLACE FUNCTION paynb_sandbox.u(s bigint, tag integer, n bigint) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ((hashint8extended(n, s * 7919 + tag) >> 11) & 9007199254740991)::double precision / 9007199254740992.0 $$;

-- integer in [0, k)
CREATE OR REPLACE FUNCTION paynb_sandbox.ri(s bigint, tag integer, n bigint, k integer) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT least(k - 1, floor(paynb_sandbox.u(s, tag, n) * k)::integer) $$;

-- a Pacific wall-clock time -> naive UTC, as pay-db stores timestamps
CREATE OR REPLACE FUNCTION paynb_sandbox.utc(local_ts timestamp) RETURNS timestamp
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT (local_ts AT TIME ZONE 'America/Vancouver') AT TIME ZONE 'UTC' $$;

-- naive UTC -> Pacific calendar date
CREATE OR REPLACE FUNCTION paynb_sandbox.local_date(utc_ts timestamp) RETURNS date
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT ((utc_ts AT TIME ZONE 'UTC') AT TIME ZONE 'America/Vancouver')::date $$;

-- next Monday-to-Friday day (statutory holidays are not modelled)
CREATE OR REPLACE FUNCTION paynb_sandbox.next_bday(d date) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT d + CASE extract(isodow FROM d)::integer WHEN 5 THEN 3 WHEN 6 THEN 2 ELSE 1 END $$;

-- Saturday ending the Sunday..Saturday statement week that holds d
CREATE OR REPLACE FUNCTION paynb_sandbox.week_end(d date) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT d + (6 - extract(dow FROM d)::integer) $$;

CREATE OR REPLACE FUNCTION paynb_sandbox.month_end(d date) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (make_date(extract(year FROM d)::integer, extract(month FROM d)::integer, 1) + interval '1 month - 1 day')::date $$;

CREATE OR REPLACE FUNCTION paynb_sandbox.reg(n bigint) RETURNS varchar
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 'REG' || lpad(n::text, 8, '0') $$;

-- Luhn check digit of a digit string (routing-slip numbers are 8 digits + this digit)
CREATE OR REPLACE FUNCTION paynb_sandbox.luhn_digit(base text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (mod(10 - mod(sum(CASE WHEN mod(length(base) - i, 2) = 0
                                  THEN (CASE WHEN 2 * substr(base, i, 1)::integer > 9
                                             THEN 2 * substr(base, i, 1)::integer - 9
                                             ELSE 2 * substr(base, i, 1)::integer END)
                                  ELSE substr(base, i, 1)::integer END)::integer, 10), 10))::text
      FROM generate_series(1, length(base)) AS i
$$;
