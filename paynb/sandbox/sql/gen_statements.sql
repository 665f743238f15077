-- Synthetic pay-db, part 3: the statements GENERATE_STATEMENTS would have written for every past
-- period (docs/statements.md): DAILY for each day, WEEKLY on Saturdays (Sunday..Saturday), MONTHLY on
-- month ends (whole month, whatever the setting's from_date), gap statements for WEEKLY settings
-- that ended on a day other than Saturday/Sunday. The job for day P runs at 01:01 Pacific on P+1,
-- so created_on (the run's UTC date) is P+1 and the last period ends on as_of - 1.
-- Binds: :as_of.

-- step: statement periods
CREATE TEMP TABLE g_stmt0 ON COMMIT DROP AS
WITH s AS (
    SELECT id, frequency, payment_account_id, from_date,
           least(coalesce(to_date, CAST(:as_of AS date) - 1), CAST(:as_of AS date) - 1) AS upto, to_date
      FROM statement_settings
)
SELECT s.id AS settings_id, s.payment_account_id AS account_id, 'DAILY'::varchar(50) AS frequency,
       s.from_date + g AS from_date, s.from_date + g AS to_date, false AS is_gap
  FROM s, generate_series(0, s.upto - s.from_date) AS g
 WHERE s.frequency = 'DAILY'
UNION ALL
SELECT s.id, s.payment_account_id, 'WEEKLY', paynb_sandbox.week_end(s.from_date) + 7 * g - 6,
       paynb_sandbox.week_end(s.from_date) + 7 * g, false
  FROM s, generate_series(0, (s.upto - paynb_sandbox.week_end(s.from_date)) / 7) AS g
 WHERE s.frequency = 'WEEKLY' AND paynb_sandbox.week_end(s.from_date) <= s.upto
UNION ALL
SELECT s.id, s.payment_account_id, 'WEEKLY', s.to_date - extract(dow FROM s.to_date)::integer, s.to_date, true
  FROM s
 WHERE s.frequency = 'WEEKLY' AND s.to_date IS NOT NULL AND s.to_date <= CAST(:as_of AS date) - 1
   AND extract(dow FROM s.to_date) NOT IN (0, 6)
UNION ALL
SELECT s.id, s.payment_account_id, 'MONTHLY', m.first_day, paynb_sandbox.month_end(m.first_day), false
  FROM s
 CROSS JOIN LATERAL (
       SELECT (make_date(extract(year FROM s.from_date)::integer, extract(month FROM s.from_date)::integer, 1)
               + make_interval(months => g))::date AS first_day
         FROM generate_series(0, 12 * (extract(year FROM s.upto)::integer - extract(year FROM s.from_date)::integer)
                                 + extract(month FROM s.upto)::integer - extract(month FROM s.from_date)::integer) AS g
 ) m
 WHERE s.frequency = 'MONTHLY' AND paynb_sandbox.month_end(m.first_day) <= s.upto;

CREATE TEMP TABLE g_stmt ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY to_date, CASE frequency WHEN 'DAILY' THEN 1 WHEN 'WEEKLY' THEN 2 ELSE 3 END,
                                   account_id, from_date)::integer AS id, g.*
  FROM g_stmt0 g;
CREATE INDEX ON g_stmt (account_id, frequency, from_date, to_date);
ANALYZE g_stmt;

-- step: statement invoices
-- every invoice status counts; an EFT account's statements hold only EFT invoices, any other
-- account's hold every invoice except EFT ones (matchPaymentMethods)
CREATE TEMP TABLE g_inv_day ON COMMIT DROP AS
SELECT i.id, i.payment_account_id AS account_id, i.payment_method_code AS method,
       paynb_sandbox.local_date(i.created_on) AS cd
  FROM invoices i
  JOIN payment_accounts pa ON pa.id = i.payment_account_id
 WHERE (pa.payment_method = 'EFT') = (i.payment_method_code = 'EFT');
ANALYZE g_inv_day;

CREATE TEMP TABLE g_si ON COMMIT DROP AS
SELECT s.id AS statement_id, d.id AS invoice_id, d.method
  FROM g_inv_day d JOIN g_stmt s
    ON s.account_id = d.account_id AND s.frequency = 'DAILY' AND s.from_date = d.cd AND s.to_date = d.cd
UNION ALL
SELECT s.id, d.id, d.method
  FROM g_inv_day d JOIN g_stmt s
    ON s.account_id = d.account_id AND s.frequency = 'WEEKLY'
   AND s.to_date = paynb_sandbox.week_end(d.cd) AND s.from_date = paynb_sandbox.week_end(d.cd) - 6
UNION ALL
SELECT s.id, d.id, d.method
  FROM g_inv_day d JOIN g_stmt s
    ON s.account_id = d.account_id AND s.frequency = 'MONTHLY'
   AND s.to_date = paynb_sandbox.month_end(d.cd)
   AND s.from_date = make_date(extract(year FROM d.cd)::integer, extract(month FROM d.cd)::integer, 1)
UNION ALL
SELECT s.id, d.id, d.method
  FROM (SELECT * FROM g_stmt WHERE is_gap) s
  JOIN g_inv_day d ON d.account_id = s.account_id AND d.cd BETWEEN s.from_date AND s.to_date;

CREATE TEMP TABLE g_sagg ON COMMIT DROP AS
SELECT statement_id, string_agg(DISTINCT method, ',' ORDER BY method) AS methods
  FROM g_si GROUP BY statement_id;
ALTER TABLE g_sagg ADD PRIMARY KEY (statement_id);

-- step: insert statements
INSERT INTO statements (id, frequency, from_date, to_date, created_on, statement_settings_id, payment_account_id,
                        notification_date, notification_status_code, is_interim_statement, overdue_notification_date,
                        payment_methods, is_empty)
SELECT s.id, s.frequency, s.from_date, s.to_date, s.to_date + 1, s.settings_id, s.account_id,
       CASE WHEN pa.statement_notification_enabled AND s.to_date + 1 < CAST(:as_of AS date) THEN s.to_date + 1 END,
       CASE WHEN NOT coalesce(pa.statement_notification_enabled, false) THEN 'SKIP'
            WHEN s.to_date + 1 < CAST(:as_of AS date) THEN 'SUCCESS'
            ELSE 'PENDING' END,
       false, NULL,
       coalesce(a.methods, pa.payment_method),
       a.statement_id IS NULL
  FROM g_stmt s
  JOIN payment_accounts pa ON pa.id = s.account_id
  LEFT JOIN g_sagg a ON a.statement_id = s.id
 ORDER BY s.id;

INSERT INTO statement_invoices (id, statement_id, invoice_id)
SELECT row_number() OVER (ORDER BY statement_id, invoice_id), statement_id, invoice_id
  FROM g_si ORDER BY statement_id, invoice_id;
