-- Synthetic pay-db, part 1: accounts and the invoice draft (who, when, what fee).
-- Binds: :seed, :as_of (Pacific date), :win_start (= as_of - window), :n_acc, :n_inv.
-- Tag numbers passed to paynb_sandbox.u/ri keep every random stream independent.

-- step: accounts
CREATE TEMP TABLE g_acc ON COMMIT DROP AS
WITH ranked AS (
    SELECT a AS id,
           (row_number() OVER (ORDER BY paynb_sandbox.u(:seed, 1, a), a) - 1)::double precision / :n_acc AS q
      FROM generate_series(1, :n_acc) AS a
)
SELECT id,
       (CASE WHEN q < 0.30 THEN 'PAD'
             WHEN q < 0.52 THEN 'DIRECT_PAY'
             WHEN q < 0.67 THEN 'DRAWDOWN'
             WHEN q < 0.77 THEN 'ONLINE_BANKING'
             WHEN q < 0.85 THEN 'EJV'
             WHEN q < 0.93 THEN 'EFT'
             ELSE 'INTERNAL' END)::varchar(15) AS method,
       CASE WHEN paynb_sandbox.u(:seed, 2, id) < 0.75 THEN CAST(:win_start AS date)
            ELSE CAST(:win_start AS date) + paynb_sandbox.ri(:seed, 3, id, 500) END AS start_date,
       1 + floor(power(paynb_sandbox.u(:seed, 4, id), 3) * 20)::integer AS weight,
       paynb_sandbox.u(:seed, 5, id) < 0.7 AS notify,
       paynb_sandbox.u(:seed, 6, id) AS h_freq,
       paynb_sandbox.u(:seed, 7, id) AS h_hist,
       paynb_sandbox.u(:seed, 8, id) AS h_misc
  FROM ranked;
ALTER TABLE g_acc ADD COLUMN billable boolean;
UPDATE g_acc SET billable = (method <> 'EJV' OR h_misc < 0.85);
ALTER TABLE g_acc ADD PRIMARY KEY (id);

-- step: statement plan
-- Frequencies are assigned by rank so the mix is exact: 3% DAILY, 7% MONTHLY, the rest WEEKLY;
-- EFT accounts are MONTHLY; routing-slip (INTERNAL) accounts have no statement settings.
CREATE TEMP TABLE g_plan ON COMMIT DROP AS
WITH r AS (
    SELECT id, start_date, h_hist,
           (row_number() OVER (ORDER BY h_freq, id) - 1)::double precision / count(*) OVER () AS fq
      FROM g_acc WHERE method NOT IN ('EFT', 'INTERNAL')
), f AS (
    SELECT id, start_date, h_hist,
           CASE WHEN fq < 0.03 THEN 'DAILY' WHEN fq < 0.10 THEN 'MONTHLY' ELSE 'WEEKLY' END AS freq1
      FROM r
), h AS (
    -- about 4% of the accounts old enough changed frequency once (at least two, so small scales have some)
    SELECT f.*, row_number() OVER (ORDER BY (f.start_date <= CAST(:as_of AS date) - 200) DESC, f.h_hist, f.id) AS hr,
           count(*) FILTER (WHERE f.start_date <= CAST(:as_of AS date) - 200) OVER () AS n_old
      FROM f
), c AS (
    SELECT id, start_date, freq1,
           CASE WHEN hr <= GREATEST(2, ceil(0.04 * n_old)) AND hr <= n_old THEN
                CASE freq1 WHEN 'WEEKLY' THEN (CASE WHEN mod(hr, 2) = 1 THEN 'MONTHLY' ELSE 'DAILY' END)
                           ELSE 'WEEKLY' END
           END AS freq2,
           start_date + 30 + paynb_sandbox.ri(:seed, 9, id, GREATEST(1, (CAST(:as_of AS date) - 75) - (start_date + 30)))
               AS change_day
      FROM h
)
SELECT id, start_date, freq1, freq2,
       CASE WHEN freq2 IS NULL THEN NULL
            WHEN 'MONTHLY' IN (freq1, freq2) THEN paynb_sandbox.month_end(change_day)
            ELSE paynb_sandbox.week_end(change_day) END AS end1
  FROM c
UNION ALL
SELECT id, start_date, 'MONTHLY', NULL, NULL FROM g_acc WHERE method = 'EFT';

-- step: invoice slots
-- Accounts get invoices in proportion to a heavy-tailed weight (slots); dates are uniform over
-- the account's life. Local times are 02:00-22:00 Pacific, and no invoice is created on the days
-- where an "older than 20 days" age bucket would depend on the hour the report runs
-- (ages 20, 31, 61, 91, 181 move one day later).
CREATE TEMP TABLE g_slot ON COMMIT DROP AS
SELECT a.id AS account_id, s AS slot
  FROM (SELECT id, weight, sum(weight) OVER (ORDER BY id) - weight AS lo FROM g_acc) a,
       generate_series(a.lo, a.lo + a.weight - 1) AS s;
CREATE UNIQUE INDEX ON g_slot (slot);
ANALYZE g_slot;

-- step: invoice draft
-- fee schedules each payment method may use (corp_types.payment_methods), as arrays per method
CREATE TEMP TABLE g_cm ON COMMIT DROP AS
SELECT m.code AS method, count(*)::integer AS n,
       array_agg(fs.fee_schedule_id ORDER BY fs.fee_schedule_id) AS fs_ids,
       array_agg(fs.corp_type_code ORDER BY fs.fee_schedule_id) AS corps
  FROM payment_methods m
  JOIN fee_schedules fs ON fs.filing_type_code <> 'NSF'
  JOIN corp_types ct ON ct.code = fs.corp_type_code AND m.code = ANY (ct.payment_methods)
 WHERE m.code IN ('PAD', 'DIRECT_PAY', 'DRAWDOWN', 'ONLINE_BANKING', 'EJV', 'EFT', 'INTERNAL')
 GROUP BY m.code;

-- :n_slots = sum(weight), passed as a constant so the hash functions are inlined
CREATE TEMP TABLE g_inv0 ON COMMIT DROP AS
WITH d AS (
    SELECT g AS gi, sl.account_id
      FROM generate_series(1, :n_inv) AS g
      JOIN g_slot sl ON sl.slot = paynb_sandbox.ri(:seed, 10, g, :n_slots)
), e AS (
    SELECT d.gi, d.account_id, a.method, cm.n, cm.fs_ids, cm.corps,
           GREATEST(1, 1 + paynb_sandbox.ri(:seed, 11, d.gi, GREATEST(1, CAST(:as_of AS date) - a.start_date))) AS k0,
           7200 + paynb_sandbox.ri(:seed, 12, d.gi, 72000) AS secs
      FROM d
      JOIN g_acc a ON a.id = d.account_id
      JOIN g_cm cm ON cm.method = a.method
), t AS MATERIALIZED (
    SELECT e.*,
           CAST(:as_of AS date) - (CASE WHEN k0 IN (20, 31, 61, 91, 181) THEN k0 - 1 ELSE k0 END) AS cdate,
           1 + paynb_sandbox.ri(:seed, 13, gi, n) AS c1,
           1 + paynb_sandbox.ri(:seed, 15, gi, n) AS c2
      FROM e
), l AS (
    SELECT t.*, t.cdate + make_interval(secs => t.secs) AS created_local FROM t
)
SELECT l.gi, l.account_id, l.method, l.cdate, l.created_local,
       paynb_sandbox.utc(l.created_local) AS created_on,
       -- the CREATE_INVOICES job runs at 19:00 Pacific, EJV_PAYMENT at 20:00
       l.cdate + CASE WHEN l.created_local::time >= (CASE WHEN l.method = 'EJV' THEN time '20:00' ELSE time '19:00' END)
                      THEN 1 ELSE 0 END AS run_date,
       l.fs_ids[l.c1] AS fs1, l.corps[l.c1] AS corp_type_code,
       CASE WHEN paynb_sandbox.u(:seed, 14, l.gi) < 0.15 THEN l.fs_ids[l.c2] END AS fs2,
       paynb_sandbox.u(:seed, 16, l.gi) < 0.05 AS priority,
       paynb_sandbox.u(:seed, 17, l.gi) < 0.02 AS future
  FROM l;
CREATE INDEX ON g_inv0 (account_id, run_date);
CREATE INDEX ON g_inv0 (method, run_date);
ANALYZE g_inv0;
