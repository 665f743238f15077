"""The statement-gap queries paynb used before it became one anti-join per frequency.

Kept verbatim as a baseline: ``tests/test_statement_gaps_setbased.py`` checks that the set-based query in
``paynb/ops/statements/gaps.py`` returns the same rows, and ``benchmarks/bench_statement_gaps.py`` times
both in the same run. It tests every expected period with a correlated ``NOT EXISTS`` in the select list,
which PostgreSQL can only run as one index probe per expected period.
"""

from __future__ import annotations

EXPECTED_PER_ROW = """
WITH s0 AS (
    SELECT ss.id AS settings_id, ss.frequency, ss.to_date AS s_to,
           pa.id AS payment_account_id, pa.auth_account_id,
           greatest(ss.from_date, CAST(:from_date AS date)) AS lo,
           least(coalesce(ss.to_date, CAST(:to_date AS date)), CAST(:to_date AS date)) AS hi
      FROM statement_settings ss
      JOIN payment_accounts pa ON pa.id = ss.payment_account_id
     WHERE ss.frequency IN ('DAILY', 'WEEKLY', 'MONTHLY')
       AND (CAST(:frequency AS varchar) IS NULL OR ss.frequency = CAST(:frequency AS varchar))
       AND (CAST(:account AS varchar) IS NULL OR pa.auth_account_id = CAST(:account AS varchar))
       AND ss.from_date <= CAST(:to_date AS date)
       AND (ss.to_date IS NULL OR ss.to_date >= CAST(:from_date AS date))
),
-- overlapping settings of one account and frequency (bad history) would expect a period twice:
-- each setting starts after the days the earlier ones already cover
s AS (
    SELECT s0.*,
           greatest(s0.lo, coalesce(max(s0.hi) OVER (PARTITION BY s0.payment_account_id, s0.frequency
                                                     ORDER BY s0.lo, s0.settings_id
                                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) + 1,
                                    s0.lo)) AS lo1
      FROM s0
),
expected AS (
    SELECT s.settings_id, s.payment_account_id, s.auth_account_id, s.frequency, 'DAILY' AS kind,
           d::date AS from_date, d::date AS to_date
      FROM s
     CROSS JOIN LATERAL generate_series(s.lo1::timestamp, s.hi::timestamp, interval '1 day') d
     WHERE s.frequency = 'DAILY'
    UNION ALL
    SELECT s.settings_id, s.payment_account_id, s.auth_account_id, s.frequency, 'WEEKLY',
           d::date - 6, d::date
      FROM s
     CROSS JOIN LATERAL generate_series((s.lo1 + (6 - extract(dow FROM s.lo1)::integer))::timestamp,
                                        s.hi::timestamp, interval '7 days') d
     WHERE s.frequency = 'WEEKLY'
    UNION ALL
    SELECT DISTINCT ON (s.payment_account_id, s.s_to)
           s.settings_id, s.payment_account_id, s.auth_account_id, s.frequency, 'GAP',
           s.s_to - extract(dow FROM s.s_to)::integer, s.s_to
      FROM s
     WHERE s.frequency = 'WEEKLY'
       AND s.s_to BETWEEN s.lo AND s.hi
       AND extract(dow FROM s.s_to) NOT IN (0, 6)
       AND NOT EXISTS (
            SELECT 1 FROM statements x
             WHERE x.payment_account_id = s.payment_account_id AND x.is_interim_statement
               AND x.from_date <= s.s_to - extract(dow FROM s.s_to)::integer
               AND x.to_date >= s.s_to)
    UNION ALL
    SELECT s.settings_id, s.payment_account_id, s.auth_account_id, s.frequency, 'MONTHLY',
           m::date, (m + interval '1 month' - interval '1 day')::date
      FROM s
     CROSS JOIN LATERAL generate_series(date_trunc('month', s.lo1::timestamp), s.hi::timestamp,
                                        interval '1 month') m
     WHERE s.frequency = 'MONTHLY'
       AND (m + interval '1 month' - interval '1 day')::date BETWEEN s.lo1 AND s.hi
),
checked AS MATERIALIZED (
    SELECT e.*,
           NOT EXISTS (
               SELECT 1 FROM statements x
                WHERE x.payment_account_id = e.payment_account_id AND x.frequency = e.frequency
                  AND x.from_date = e.from_date AND x.to_date = e.to_date) AS missing
      FROM expected e
),
missing AS MATERIALIZED (
    SELECT * FROM checked WHERE missing
)
SELECT 'kind' AS row_type, to_date AS statement_day, kind, frequency,
       count(*) AS expected, count(*) FILTER (WHERE missing) AS missing,
       NULL::integer AS payment_account_id, NULL::varchar AS auth_account_id,
       NULL::integer AS settings_id, NULL::date AS from_date
  FROM checked GROUP BY to_date, kind, frequency
UNION ALL
-- accounts expected on the days that miss something (the job-command rule needs them)
SELECT 'accounts', to_date, NULL, NULL, count(DISTINCT payment_account_id), NULL, NULL, NULL, NULL, NULL
  FROM checked WHERE to_date IN (SELECT to_date FROM missing) GROUP BY to_date
UNION ALL
SELECT 'missing', to_date, kind, frequency, NULL, NULL, payment_account_id, auth_account_id,
       settings_id, from_date
  FROM missing
"""


# duplicated non-interim periods, grouped with the account's auth id (a sort of every statement)
DUPLICATES_SORTED = """
    SELECT pa.auth_account_id, x.payment_account_id, x.frequency, x.from_date, x.to_date,
           count(*) AS statements, array_agg(x.id ORDER BY x.id) AS statement_ids
      FROM statements x
      JOIN payment_accounts pa ON pa.id = x.payment_account_id
     WHERE x.to_date BETWEEN CAST(:from_date AS date) AND CAST(:to_date AS date)
       AND (CAST(:frequency AS varchar) IS NULL OR x.frequency = CAST(:frequency AS varchar))
       AND (CAST(:account AS varchar) IS NULL OR pa.auth_account_id = CAST(:account AS varchar))
       AND NOT x.is_interim_statement
     GROUP BY pa.auth_account_id, x.payment_account_id, x.frequency, x.from_date, x.to_date
    HAVING count(*) > 1
     ORDER BY x.to_date, x.frequency, x.payment_account_id
"""
