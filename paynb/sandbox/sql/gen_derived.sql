-- Synthetic pay-db, part 2: invoice ids, line items, lifecycle states (docs/status-lifecycles.md#by-payment-method) and every
-- row that follows from them. Scenario flags (g_flag_*) were chosen by the generator beforehand.
-- Binds: :seed, :as_of.

-- step: invoice ids
-- ids grow with created_on, as in pay-db, so the oldest invoice of a PAD roll-up has the lowest id
CREATE TEMP TABLE g_inv ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY created_on, gi)::integer AS id, g.*
  FROM g_inv0 g;
ALTER TABLE g_inv ADD PRIMARY KEY (id);
CREATE INDEX ON g_inv (method, account_id, run_date);
ANALYZE g_inv;

-- step: line items
CREATE TEMP TABLE g_line ON COMMIT DROP AS
WITH l AS (
    SELECT i.id AS invoice_id, v.ln, fs.fee_schedule_id, fc.amount AS filing_fees,
           CASE WHEN v.ln = 1 AND i.priority AND fs.priority_fee_code IS NOT NULL THEN pfc.amount ELSE 0 END
               AS priority_fees,
           CASE WHEN v.ln = 1 AND i.future AND fs.future_effective_fee_code IS NOT NULL THEN ffc.amount ELSE 0 END
               AS future_fees,
           CASE WHEN i.method = 'INTERNAL' OR fs.service_fee_code IS NULL THEN 0 ELSE sfc.amount END AS service_fees,
           fs.statutory_fees_gst_added, fs.service_fees_gst_added, ft.description
      FROM g_inv i
     CROSS JOIN LATERAL (VALUES (1, i.fs1), (2, i.fs2)) AS v(ln, fsid)
      JOIN fee_schedules fs ON fs.fee_schedule_id = v.fsid
      JOIN filing_types ft ON ft.code = fs.filing_type_code
      JOIN fee_codes fc ON fc.code = fs.fee_code
      LEFT JOIN fee_codes pfc ON pfc.code = fs.priority_fee_code
      LEFT JOIN fee_codes ffc ON ffc.code = fs.future_effective_fee_code
      LEFT JOIN fee_codes sfc ON sfc.code = fs.service_fee_code
)
SELECT invoice_id, ln, fee_schedule_id, description, filing_fees, priority_fees, future_fees, service_fees,
       filing_fees + priority_fees + future_fees AS total,
       CASE WHEN statutory_fees_gst_added THEN round(filing_fees * 0.05, 2) ELSE 0 END AS statutory_fees_gst,
       CASE WHEN service_fees_gst_added THEN round(service_fees * 0.05, 2) ELSE 0 END AS service_fees_gst
  FROM l;

-- invoice total = sum over lines of (fees + service fees + GST)
CREATE TEMP TABLE g_tot ON COMMIT DROP AS
SELECT invoice_id,
       sum(total + service_fees + statutory_fees_gst + service_fees_gst)::numeric(19, 2) AS total,
       sum(service_fees)::numeric(19, 2) AS service_fees,
       sum(statutory_fees_gst + service_fees_gst)::numeric(19, 2) AS gst
  FROM g_line GROUP BY invoice_id;
ALTER TABLE g_tot ADD PRIMARY KEY (invoice_id);

-- step: PAD roll-ups
-- CREATE_INVOICES rolls every APPROVED PAD invoice of an account without an ACTIVE reference into
-- one CFS invoice per run; CAS debits it on the next business day (the Application Date).
CREATE TEMP TABLE g_pad0 ON COMMIT DROP AS
SELECT i.account_id, i.run_date, min(i.id) AS min_id, sum(t.total)::numeric(19, 2) AS total, count(*) AS n,
       paynb_sandbox.next_bday(i.run_date) AS appl_date
  FROM g_inv i JOIN g_tot t ON t.invoice_id = i.id
 WHERE i.method = 'PAD'
 GROUP BY i.account_id, i.run_date;

CREATE TEMP TABLE g_pad1 ON COMMIT DROP AS
SELECT p.*,
       CASE WHEN fa.kind = 'pad_noref' AND p.run_date >= fa.since THEN 'noref'
            WHEN p.run_date >= CAST(:as_of AS date) THEN 'noref'
            WHEN fg.kind IS NOT NULL THEN fg.kind
            WHEN ff.kind IS NOT NULL THEN 'settled_unprocessed'
            WHEN fa.kind = 'pad_nsf' AND p.appl_date > fa.since THEN 'pending'
            WHEN p.appl_date > CAST(:as_of AS date) - 2 THEN 'pending'
            ELSE 'paid' END AS state
  FROM g_pad0 p
  LEFT JOIN g_flag_acc fa ON fa.account_id = p.account_id
  LEFT JOIN g_flag_grp fg ON fg.account_id = p.account_id AND fg.run_date = p.run_date
  LEFT JOIN g_flag_file ff ON ff.appl_date = p.appl_date;

-- the CFS invoice number is REG + the 8-digit id of the oldest invoice of the roll-up
CREATE TEMP TABLE g_pad ON COMMIT DROP AS
SELECT p.*,
       CASE WHEN p.state <> 'noref' THEN paynb_sandbox.reg(p.min_id) END AS invoice_number,
       CASE WHEN p.state IN ('paid', 'nsf')
            THEN (1000000000 + row_number() OVER (PARTITION BY p.state IN ('paid', 'nsf')
                                                  ORDER BY p.appl_date, p.min_id))::text END AS receipt_number
  FROM g_pad1 p;
CREATE UNIQUE INDEX ON g_pad (account_id, run_date);
ANALYZE g_pad;

-- step: lifecycle states
-- MATERIALIZED: the state columns are referenced many times below; computed once per row
CREATE TEMP TABLE g_st ON COMMIT DROP AS
WITH g_st0 AS MATERIALIZED (
SELECT i.id, i.account_id, i.method, i.cdate, i.run_date, i.created_on, i.corp_type_code, t.total,
       t.service_fees, t.gst, a.billable,
       paynb_sandbox.u(:seed, 23, i.id) AS h,
       -- ONLINE_BANKING: the customer pays a few days after the CFS invoice exists
       paynb_sandbox.next_bday(i.run_date + paynb_sandbox.ri(:seed, 20, i.id, 5)) AS ob_appl,
       i.cdate + 5 + paynb_sandbox.ri(:seed, 22, i.id, 40) AS eft_paid_day,
       (make_date(extract(year FROM i.cdate)::integer, extract(month FROM i.cdate)::integer, 1)
            + interval '2 months 14 days')::date AS overdue_day,
       p.state AS pad_state, p.invoice_number AS pad_number, p.receipt_number AS pad_receipt,
       p.appl_date AS pad_appl, fa.kind AS acc_kind, fa.since AS acc_since, fe.kind AS ejv_kind
  FROM g_inv i
  JOIN g_tot t ON t.invoice_id = i.id
  JOIN g_acc a ON a.id = i.account_id
  LEFT JOIN g_pad p ON i.method = 'PAD' AND p.account_id = i.account_id AND p.run_date = i.run_date
  LEFT JOIN g_flag_acc fa ON fa.account_id = i.account_id
  LEFT JOIN g_flag_ejv fe ON i.method = 'EJV' AND fe.run_date = i.run_date
), g_st1 AS MATERIALIZED (
SELECT s.*,
       CASE s.method
           WHEN 'PAD' THEN CASE WHEN s.pad_state = 'paid' AND s.h < 0.01
                                     AND s.pad_appl <= CAST(:as_of AS date) - 10 THEN 'credited'
                                ELSE s.pad_state END
           WHEN 'ONLINE_BANKING' THEN CASE
                WHEN s.run_date >= CAST(:as_of AS date) THEN 'noref'
                WHEN s.h < 0.03 THEN 'unpaid'
                WHEN ff.kind IS NOT NULL THEN 'settled_unprocessed'
                WHEN s.ob_appl > CAST(:as_of AS date) - 2 THEN 'pending'
                ELSE 'paid' END
           WHEN 'EFT' THEN CASE
                WHEN s.run_date >= CAST(:as_of AS date) THEN 'noref'
                WHEN s.h >= 0.10 AND s.eft_paid_day <= CAST(:as_of AS date) - 1 THEN 'paid'
                WHEN s.overdue_day < CAST(:as_of AS date) THEN 'overdue'
                ELSE 'pending' END
           WHEN 'EJV' THEN CASE
                WHEN NOT s.billable THEN 'paid_nonbillable'
                WHEN s.acc_kind = 'ejv_stop' AND s.run_date = s.acc_since THEN 'errored'
                WHEN s.acc_kind = 'ejv_stop' AND s.run_date > s.acc_since THEN 'blocked'
                WHEN s.run_date >= CAST(:as_of AS date) THEN 'noref'
                WHEN s.run_date = CAST(:as_of AS date) - 1 OR s.ejv_kind IS NOT NULL THEN 'sent'
                ELSE 'paid' END
           WHEN 'INTERNAL' THEN CASE WHEN s.run_date >= CAST(:as_of AS date) THEN 'noref' ELSE 'paid' END
           WHEN 'DIRECT_PAY' THEN CASE
                WHEN s.h < 0.03 THEN 'created'
                WHEN s.h < 0.05 THEN 'deleted'
                WHEN s.h < 0.07 AND s.cdate <= CAST(:as_of AS date) - 5 THEN 'refunded'
                ELSE 'paid' END
           WHEN 'DRAWDOWN' THEN CASE WHEN s.h < 0.01 AND s.cdate <= CAST(:as_of AS date) - 5 THEN 'refunded'
                                     ELSE 'paid' END
       END AS state
  FROM g_st0 s
  LEFT JOIN g_flag_file ff ON s.method = 'ONLINE_BANKING' AND ff.appl_date = s.ob_appl
)
SELECT s.id, s.account_id, s.method, s.cdate, s.run_date, s.created_on, s.corp_type_code, s.total,
       s.service_fees, s.gst, s.state,
       s.pad_appl, s.ob_appl, s.pad_number,
       CASE
           WHEN s.state IN ('paid', 'paid_nonbillable') THEN 'PAID'
           WHEN s.state = 'credited' THEN 'CREDITED'
           WHEN s.state = 'refunded' THEN 'REFUNDED'
           WHEN s.state = 'deleted' THEN 'DELETED'
           WHEN s.state = 'created' THEN 'CREATED'
           WHEN s.state = 'overdue' THEN 'OVERDUE'
           WHEN s.state = 'nsf' THEN 'SETTLEMENT_SCHED'
           WHEN s.method = 'ONLINE_BANKING' THEN CASE WHEN s.state = 'noref' THEN 'CREATED' ELSE 'SETTLEMENT_SCHED' END
           ELSE 'APPROVED'
       END AS status,
       CASE
           WHEN s.state IN ('noref', 'blocked') THEN NULL
           WHEN s.method = 'PAD' THEN s.pad_number
           WHEN s.method = 'DRAWDOWN' THEN 'BCOL' || lpad(s.id::text, 8, '0')
           ELSE paynb_sandbox.reg(s.id)
       END AS ref_number,
       CASE
           WHEN s.state IN ('paid', 'paid_nonbillable', 'credited', 'refunded') THEN 'COMPLETED'
           WHEN s.state IN ('deleted', 'errored') THEN 'CANCELLED'
           ELSE 'ACTIVE'
       END AS ref_status,
       CASE s.method
           WHEN 'PAD' THEN paynb_sandbox.utc(s.run_date + time '19:00')
           WHEN 'ONLINE_BANKING' THEN paynb_sandbox.utc(s.run_date + time '19:00')
           WHEN 'EFT' THEN paynb_sandbox.utc(s.run_date + time '19:00')
           WHEN 'INTERNAL' THEN paynb_sandbox.utc(s.run_date + time '19:00')
           WHEN 'EJV' THEN CASE WHEN s.billable THEN paynb_sandbox.utc(s.run_date + time '20:01')
                                ELSE s.created_on END
           ELSE s.created_on
       END AS ref_created,
       CASE
           WHEN s.state NOT IN ('paid', 'paid_nonbillable', 'credited', 'refunded') THEN NULL
           WHEN s.method = 'PAD' THEN s.pad_appl::timestamp
           WHEN s.method = 'ONLINE_BANKING' THEN s.ob_appl::timestamp
           WHEN s.method = 'EFT' THEN paynb_sandbox.utc(s.eft_paid_day + time '10:00')
           WHEN s.method = 'EJV' AND s.billable THEN (s.run_date + 1)::timestamp
           WHEN s.method = 'INTERNAL' THEN paynb_sandbox.utc(s.run_date + time '19:00')
           WHEN s.method = 'DIRECT_PAY' THEN s.created_on + interval '90 seconds'
           ELSE s.created_on
       END AS payment_date,
       CASE
           WHEN s.state NOT IN ('paid', 'paid_nonbillable', 'credited', 'refunded') THEN NULL
           WHEN s.method = 'PAD' THEN s.pad_receipt
           WHEN s.method = 'ONLINE_BANKING' THEN 'OB' || lpad(s.id::text, 8, '0')
           WHEN s.method = 'EFT' THEN 'EFT' || lpad(s.id::text, 8, '0')
           WHEN s.method = 'EJV' THEN 'JV' || lpad(s.id::text, 8, '0')
           WHEN s.method = 'INTERNAL' THEN '2' || lpad(s.account_id::text, 7, '0')
           WHEN s.method = 'DIRECT_PAY' THEN 'PB' || lpad(s.id::text, 8, '0')
           ELSE 'BCOL' || lpad(s.id::text, 8, '0')
       END AS receipt_number,
       CASE WHEN s.state IN ('credited', 'refunded') THEN s.total END AS refund,
       CASE
           WHEN s.state = 'credited' THEN paynb_sandbox.utc(s.pad_appl + 7 + time '11:00')
           WHEN s.state = 'refunded' THEN s.created_on + interval '3 days'
       END AS refund_date,
       paynb_sandbox.utc(s.overdue_day::timestamp) AS overdue_date,
       s.eft_paid_day
  FROM g_st1 s;
ALTER TABLE g_st ADD PRIMARY KEY (id);
ANALYZE g_st;

-- step: routing slips
-- one routing slip per routing-slip (INTERNAL) account; its number is 8 digits + a Luhn digit
CREATE TEMP TABLE g_rs ON COMMIT DROP AS
SELECT a.id AS account_id, a.id AS rs_id,
       ('2' || lpad(a.id::text, 7, '0')) || paynb_sandbox.luhn_digit('2' || lpad(a.id::text, 7, '0')) AS number,
       a.start_date,
       coalesce(sum(s.total) FILTER (WHERE s.status = 'PAID'), 0) AS paid_sum,
       coalesce(sum(s.total), 0) AS all_sum,
       CASE WHEN paynb_sandbox.u(:seed, 40, a.id) < 0.1 THEN 0
            ELSE 10 * (5 + paynb_sandbox.ri(:seed, 41, a.id, 50)) END AS extra
  FROM g_acc a
  LEFT JOIN g_st s ON s.account_id = a.id
 WHERE a.method = 'INTERNAL'
 GROUP BY a.id, a.start_date;

-- step: insert accounts
INSERT INTO payment_accounts (id, auth_account_id, name, statement_notification_enabled, bcol_account, bcol_user_id,
                              payment_method, billable, pad_tos_accepted_by, pad_tos_accepted_date, pad_activation_date,
                              eft_enable, branch_name, version, has_nsf_invoices, has_overdue_invoices, ob_credit,
                              pad_credit, eft_credit, restrict_ejv)
SELECT a.id,
       CASE WHEN a.method = 'INTERNAL' THEN NULL ELSE (3000 + a.id)::text END,
       CASE WHEN a.method = 'INTERNAL' THEN 'Routing slip ' || r.number
            ELSE 'Sandbox Org ' || lpad(a.id::text, 5, '0') END,
       CASE WHEN a.method = 'INTERNAL' THEN NULL ELSE a.notify END,
       CASE WHEN a.method = 'DRAWDOWN' THEN (180000 + a.id)::text END,
       CASE WHEN a.method = 'DRAWDOWN' THEN 'PB' || lpad(a.id::text, 5, '0') END,
       a.method,
       a.billable,
       CASE WHEN a.method = 'PAD' THEN 'sandbox-admin-' || a.id END,
       CASE WHEN a.method = 'PAD' THEN paynb_sandbox.utc(a.start_date - 5 + time '10:00') END,
       CASE WHEN a.method = 'PAD' THEN paynb_sandbox.utc(a.start_date - 2 + time '10:00') END,
       a.method = 'EFT',
       CASE WHEN paynb_sandbox.u(:seed, 42, a.id) < 0.1 THEN 'Branch ' || (1 + paynb_sandbox.ri(:seed, 43, a.id, 9)) END,
       1, NULL, NULL,
       CASE WHEN a.method = 'ONLINE_BANKING' THEN 0 END,
       CASE WHEN a.method = 'PAD' THEN 0 END,
       CASE WHEN a.method = 'EFT' THEN 0 END,
       false
  FROM g_acc a
  LEFT JOIN g_rs r ON r.account_id = a.id
 ORDER BY a.id;

-- primary CFS account id = payment account id; older INACTIVE rows (bank changes) follow
INSERT INTO cfs_accounts (id, cfs_account, cfs_party, cfs_site, bank_number, bank_branch_number, account_id,
                          contact_party, payment_instrument_number, status, bank_account_number, version,
                          payment_method)
SELECT a.id, (2000000 + a.id)::text, (100000 + a.id)::text, (300000 + a.id)::text,
       CASE WHEN a.method = 'PAD' THEN lpad((1 + paynb_sandbox.ri(:seed, 44, a.id, 9))::text, 4, '0') END,
       CASE WHEN a.method = 'PAD' THEN lpad((100 + paynb_sandbox.ri(:seed, 45, a.id, 900))::text, 5, '0') END,
       a.id, NULL,
       CASE WHEN a.method = 'PAD' THEN (500000 + a.id)::text END,
       coalesce(fa.cfs_status, 'ACTIVE'), NULL, 1, a.method
  FROM g_acc a
  LEFT JOIN g_flag_acc fa ON fa.account_id = a.id
 WHERE a.method IN ('PAD', 'ONLINE_BANKING', 'EFT', 'INTERNAL')
 ORDER BY a.id;
INSERT INTO cfs_accounts (id, cfs_account, cfs_party, cfs_site, bank_number, bank_branch_number, account_id,
                          status, version, payment_method)
SELECT (SELECT max(id) FROM g_acc) + row_number() OVER (ORDER BY a.id),
       (2500000 + a.id)::text, (100000 + a.id)::text, (400000 + a.id)::text, '0001', '00010', a.id,
       'INACTIVE', 2, 'PAD'
  FROM g_acc a
 WHERE a.method = 'PAD' AND paynb_sandbox.u(:seed, 46, a.id) < 0.1
 ORDER BY a.id;

INSERT INTO statement_settings (id, frequency, payment_account_id, from_date, to_date)
SELECT row_number() OVER (ORDER BY id, from_date), frequency, id, from_date, to_date
  FROM (SELECT id, freq1 AS frequency, start_date AS from_date, end1 AS to_date FROM g_plan
        UNION ALL
        SELECT id, freq2, end1 + 1, NULL FROM g_plan WHERE freq2 IS NOT NULL) x;

INSERT INTO statement_recipients (auth_user_id, first_name, last_name, email, payment_account_id)
SELECT 50000 + a.id,
       (ARRAY['Alex','Sam','Jordan','Taylor','Morgan','Casey','Jamie','Robin','Avery','Quinn'])[1 + paynb_sandbox.ri(:seed, 47, a.id, 10)],
       (ARRAY['Nguyen','Smith','Singh','Chen','Brown','Wilson','Li','Martin','Tremblay','Roy'])[1 + paynb_sandbox.ri(:seed, 48, a.id, 10)],
       'billing+' || a.id || '@example.com', a.id
  FROM g_acc a WHERE a.notify AND a.method <> 'INTERNAL' ORDER BY a.id;

-- step: gov-account distribution codes
-- every billable EJV account has its own GL (client != 112); EJV_PAYMENT needs it
INSERT INTO distribution_codes (created_on, distribution_code_id, name, client, responsibility_centre, service_line,
                                stob, project_code, start_date, end_date, created_by, stop_ejv, account_id, version)
SELECT paynb_sandbox.utc(a.start_date - 3 + time '09:00'),
       1000 + row_number() OVER (ORDER BY a.id),
       'Sandbox Org ' || lpad(a.id::text, 5, '0'),
       lpad((10 + paynb_sandbox.ri(:seed, 49, a.id, 80))::text, 3, '0'),
       lpad((10000 + a.id)::text, 5, '0'), '10101', '6001', lpad((1000000 + a.id)::text, 7, '0'),
       a.start_date - 3, NULL, 'sandbox', coalesce(fa.kind = 'ejv_stop', false), a.id, 1
  FROM g_acc a
  LEFT JOIN g_flag_acc fa ON fa.account_id = a.id
 WHERE a.method = 'EJV' AND a.billable
 ORDER BY a.id;

-- step: insert routing slips
INSERT INTO routing_slips (created_on, id, number, payment_account_id, status, total, remaining_amount, created_by,
                           created_name, routing_slip_date, refund_amount, total_usd, cas_version_suffix, cas_mismatch,
                           contact_name)
SELECT paynb_sandbox.utc(r.start_date + time '09:30'), r.rs_id, r.number, r.account_id,
       CASE WHEN r.extra = 0 AND r.all_sum = r.paid_sum THEN 'COMPLETE' ELSE 'ACTIVE' END,
       r.all_sum + r.extra, r.all_sum + r.extra - r.paid_sum, 'sandbox-staff', 'Sandbox Staff', r.start_date,
       NULL, NULL, 1, false, NULL
  FROM g_rs r ORDER BY r.rs_id;

-- step: insert invoices
INSERT INTO invoices (created_by, created_on, updated_by, updated_on, id, invoice_status_code, total, paid, payment_date,
                      refund, routing_slip, filing_id, folio_number, service_fees, business_identifier, corp_type_code,
                      created_name, updated_name, dat_number, bcol_account, payment_account_id, cfs_account_id,
                      payment_method_code, disbursement_status_code, details, disbursement_date, refund_date,
                      overdue_date, disbursement_reversal_date, gst)
SELECT CASE WHEN s.method = 'INTERNAL' THEN 'sandbox-staff' ELSE 'sandbox-user-' || s.account_id END,
       s.created_on,
       CASE WHEN s.status <> 'APPROVED' OR s.ref_number IS NOT NULL THEN 'SYSTEM' END,
       CASE WHEN s.refund_date IS NOT NULL THEN s.refund_date
            WHEN s.payment_date IS NOT NULL THEN greatest(s.payment_date, s.created_on)
            WHEN s.ref_number IS NOT NULL AND s.ref_created > s.created_on THEN s.ref_created END,
       s.id, s.status, s.total,
       CASE WHEN s.status IN ('PAID', 'CREDITED', 'REFUNDED') THEN s.total ELSE 0 END,
       s.payment_date, s.refund,
       CASE WHEN s.method = 'INTERNAL' THEN r.number END,
       CASE WHEN ct.product = 'BUSINESS' THEN (100000 + s.id)::text END,
       CASE WHEN paynb_sandbox.u(:seed, 31, s.id) < 0.1 THEN 'F-' || lpad(paynb_sandbox.ri(:seed, 32, s.id, 99999)::text, 5, '0') END,
       s.service_fees,
       CASE WHEN ct.product = 'BUSINESS' THEN 'BC' || lpad((1000000 + paynb_sandbox.ri(:seed, 30, s.account_id * 7 + mod(s.id, 7), 8999999))::text, 7, '0')
            WHEN s.corp_type_code = 'NRO' THEN 'NR ' || lpad(paynb_sandbox.ri(:seed, 33, s.id, 9999999)::text, 7, '0') END,
       s.corp_type_code,
       CASE WHEN s.method = 'INTERNAL' THEN 'Sandbox Staff' ELSE 'Sandbox User' END,
       NULL,
       CASE WHEN s.method = 'DRAWDOWN' THEN 'C' || lpad(paynb_sandbox.ri(:seed, 34, s.id, 9999999)::text, 7, '0') END,
       CASE WHEN s.method = 'DRAWDOWN' THEN (180000 + s.account_id)::text END,
       s.account_id,
       CASE WHEN s.method IN ('PAD', 'ONLINE_BANKING', 'EFT', 'INTERNAL') AND s.ref_number IS NOT NULL THEN s.account_id END,
       s.method,
       CASE WHEN s.method = 'EFT' AND s.status = 'PAID' AND ct.has_partner_disbursements
                 AND s.eft_paid_day + 2 <= CAST(:as_of AS date) - 1 THEN 'COMPLETED' END,
       NULL,
       CASE WHEN s.method = 'EFT' AND s.status = 'PAID' AND ct.has_partner_disbursements
                 AND s.eft_paid_day + 2 <= CAST(:as_of AS date) - 1 THEN (s.eft_paid_day + 2)::timestamp END,
       s.refund_date,
       CASE WHEN s.method = 'EFT' THEN s.overdue_date END,
       NULL,
       s.gst
  FROM g_st s
  JOIN corp_types ct ON ct.code = s.corp_type_code
  LEFT JOIN g_rs r ON r.account_id = s.account_id
 ORDER BY s.id;

-- step: insert line items
INSERT INTO payment_line_items (id, invoice_id, filing_fees, fee_schedule_id, quantity, description, pst, total,
                                line_item_status_code, future_effective_fees, priority_fees, waived_by, waived_fees,
                                fee_distribution_id, service_fees, service_fees_gst, statutory_fees_gst)
SELECT row_number() OVER (ORDER BY l.invoice_id, l.ln), l.invoice_id, l.filing_fees, l.fee_schedule_id, 1,
       l.description, 0, l.total, 'ACTIVE', l.future_fees, l.priority_fees, NULL, 0,
       10 + l.fee_schedule_id, l.service_fees, l.service_fees_gst, l.statutory_fees_gst
  FROM g_line l ORDER BY l.invoice_id, l.ln;

-- step: insert references
INSERT INTO invoice_references (id, invoice_id, invoice_number, reference_number, status_code, created_on,
                                is_consolidated)
SELECT row_number() OVER (ORDER BY s.id), s.id, s.ref_number,
       CASE WHEN s.method IN ('PAD', 'ONLINE_BANKING', 'EFT', 'INTERNAL') THEN (9000000 + s.id)::text END,
       s.ref_status, s.ref_created, false
  FROM g_st s WHERE s.ref_number IS NOT NULL OR s.state = 'errored'
 ORDER BY s.id;

-- step: insert receipts
INSERT INTO receipts (id, invoice_id, receipt_number, receipt_date, receipt_amount)
SELECT row_number() OVER (ORDER BY s.id), s.id, s.receipt_number, s.payment_date, s.total::double precision
  FROM g_st s WHERE s.receipt_number IS NOT NULL
 ORDER BY s.id;

-- step: insert payments
-- PAD: one per CSV row (per roll-up); ONLINE_BANKING: one per BOLP row; PayBC/BCOL/CGI: one per invoice;
-- routing slips: one FAS payment per slip.
INSERT INTO payments (payment_system_code, payment_method_code, payment_status_code, paid_amount, payment_date,
                      invoice_number, payment_account_id, invoice_amount, cons_inv_number, created_by, receipt_number,
                      cheque_receipt_number, is_routing_slip, paid_usd_amount)
SELECT system, method, status, paid, pdate, inv_no, account_id, inv_amount, NULL, 'SYSTEM', receipt, cheque, is_rs, NULL
  FROM (
    SELECT 1 AS src, p.appl_date AS k1, p.min_id AS k2, 'PAYBC' AS system, 'PAD' AS method,
           CASE WHEN p.state = 'nsf' THEN 'FAILED' ELSE 'COMPLETED' END AS status,
           CASE WHEN p.state = 'nsf' THEN 0 ELSE p.total END AS paid,
           p.appl_date::timestamp AS pdate, p.invoice_number AS inv_no, p.account_id, p.total AS inv_amount,
           p.receipt_number AS receipt, NULL AS cheque, false AS is_rs
      FROM g_pad p WHERE p.state IN ('paid', 'nsf')
    UNION ALL
    SELECT 2, s.payment_date::date, s.id,
           CASE s.method WHEN 'DRAWDOWN' THEN 'BCOL' WHEN 'EJV' THEN 'CGI' ELSE 'PAYBC' END,
           s.method, CASE WHEN s.status = 'REFUNDED' THEN 'REFUNDED' ELSE 'COMPLETED' END,
           s.total, s.payment_date, s.ref_number, s.account_id, s.total, s.receipt_number, NULL, false
      FROM g_st s
     WHERE s.method IN ('ONLINE_BANKING', 'DIRECT_PAY', 'DRAWDOWN', 'EJV', 'EFT')
       AND s.status IN ('PAID', 'REFUNDED', 'CREDITED') AND s.receipt_number IS NOT NULL
    UNION ALL
    SELECT 3, r.start_date, r.rs_id, 'FAS', 'INTERNAL', 'COMPLETED', r.all_sum + r.extra,
           r.start_date::timestamp, NULL, r.account_id, r.all_sum + r.extra, r.number,
           CASE WHEN paynb_sandbox.u(:seed, 50, r.rs_id) < 0.5 THEN lpad(paynb_sandbox.ri(:seed, 51, r.rs_id, 999999)::text, 6, '0') END,
           true
      FROM g_rs r
  ) x
 ORDER BY k1, src, k2;

-- step: refunds and credits
INSERT INTO refunds (invoice_id, requested_date, reason, requested_by, status, type, decision_made_by, decision_date)
SELECT s.id, s.refund_date - interval '1 hour', 'Sandbox refund request', 'sandbox-user-' || s.account_id,
       'APPROVAL_NOT_REQUIRED', 'INVOICE', NULL, NULL
  FROM g_st s WHERE s.status IN ('REFUNDED', 'CREDITED') ORDER BY s.id;

INSERT INTO credits (cfs_identifier, is_credit_memo, amount, remaining_amount, account_id, details, created_on,
                     cfs_site, created_invoice_id)
SELECT 'CM' || lpad(s.id::text, 8, '0'), true, s.total::double precision, 0, s.account_id,
       'Credit memo for invoice ' || s.id, s.refund_date, (300000 + s.account_id)::text, s.id
  FROM g_st s WHERE s.status = 'CREDITED' ORDER BY s.id;

-- step: EJV files
-- EJV_PAYMENT (20:01 Pacific) writes one INBOX file per run with one journal per gov account, named by
-- the UTC time of the run (docs/business-days.md); FEEDBACK arrives the next morning.
CREATE TEMP TABLE g_ejvf ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY run_date)::integer AS id, run_date,
       bool_or(state = 'errored') AS has_error,
       bool_or(state = 'sent') AS no_feedback
  FROM g_st
 WHERE method = 'EJV' AND state IN ('paid', 'sent', 'errored')
 GROUP BY run_date;
INSERT INTO ejv_files (id, created_on, completed_on, file_ref, disbursement_status_code, feedback_file_ref, message,
                       file_type, ack_file_ref)
SELECT f.id, paynb_sandbox.utc(f.run_date + time '20:01'), NULL,
       'INBOX.F3505.' || to_char(paynb_sandbox.utc(f.run_date + time '20:01:07'), 'YYYYMMDDHH24MISS'),
       CASE WHEN f.has_error THEN 'ERRORED' WHEN f.no_feedback THEN 'UPLOADED' ELSE 'COMPLETED' END,
       CASE WHEN f.no_feedback THEN NULL
            ELSE 'FEEDBACK.F3505.' || to_char(f.run_date + 1 + time '06:15:00', 'YYYYMMDDHH24MISS') END,
       CASE WHEN f.has_error THEN 'BH 0001 Batch contains rejected journal(s)' END,
       'PAYMENT', NULL
  FROM g_ejvf f ORDER BY f.id;

CREATE TEMP TABLE g_ejvh ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY f.id, s.account_id)::integer AS id, f.id AS file_id, s.account_id,
       bool_or(s.state = 'errored') AS errored, f.no_feedback
  FROM g_st s JOIN g_ejvf f ON f.run_date = s.run_date
 WHERE s.method = 'EJV' AND s.state IN ('paid', 'sent', 'errored')
 GROUP BY f.id, s.account_id, f.no_feedback;
INSERT INTO ejv_headers (id, disbursement_status_code, ejv_file_id, partner_code, payment_account_id, message)
SELECT h.id,
       CASE WHEN h.errored THEN 'ERRORED' WHEN h.no_feedback THEN 'UPLOADED' ELSE 'COMPLETED' END,
       h.file_id, NULL, h.account_id,
       CASE WHEN h.errored THEN 'JH 0150 Journal rejected: distribution code not valid for this client' END
  FROM g_ejvh h ORDER BY h.id;

INSERT INTO ejv_links (id, link_id, ejv_header_id, disbursement_status_code, message, sequence, link_type)
SELECT row_number() OVER (ORDER BY h.id, s.id), s.id, h.id,
       CASE s.state WHEN 'errored' THEN 'ERRORED' WHEN 'sent' THEN 'UPLOADED' ELSE 'COMPLETED' END,
       CASE WHEN s.state = 'errored' THEN 'JD 0155 Invalid account code combination' END,
       row_number() OVER (PARTITION BY h.id ORDER BY s.id), 'invoice'
  FROM g_st s
  JOIN g_ejvf f ON f.run_date = s.run_date
  JOIN g_ejvh h ON h.file_id = f.id AND h.account_id = s.account_id
 WHERE s.method = 'EJV' AND s.state IN ('paid', 'sent', 'errored')
 ORDER BY h.id, s.id;

-- step: settlement files
-- one CAS file per business day; received the next day (08:30, weekends 17:30 Pacific), processed
-- a minute later. Flagged dates were never processed (scenarios).
INSERT INTO cas_settlements (id, received_on, file_name, processed_on)
SELECT row_number() OVER (ORDER BY x), r.received_on,
       'BCR_PAYMENT_APPL_' || to_char(x, 'YYYYMMDD') || '.csv',
       CASE WHEN ff.kind = 'unprocessed_started' THEN NULL ELSE r.received_on + interval '95 seconds' END
  FROM (SELECT CAST(:win_start AS date) + g AS x
          FROM generate_series(1, CAST(:as_of AS date) - 2 - CAST(:win_start AS date)) AS g) d
  CROSS JOIN LATERAL (
      SELECT paynb_sandbox.utc(d.x + 1 + CASE WHEN extract(isodow FROM d.x + 1) IN (6, 7)
                                              THEN time '17:30' ELSE time '08:30' END) AS received_on
  ) r
  LEFT JOIN g_flag_file ff ON ff.appl_date = d.x
 WHERE extract(isodow FROM d.x) < 6
   AND (ff.kind IS NULL OR ff.kind = 'unprocessed_started')
 ORDER BY x;

-- step: CFS invoices
-- what the CFS sandbox serves: one CFS invoice per PAD roll-up and per ONLINE_BANKING, EFT and
-- routing-slip invoice that has an ACTIVE or COMPLETED reference
INSERT INTO paynb_sandbox.cfs_invoices (cfs_party, cfs_account, cfs_site, invoice_number, total, amount_due, present,
                                        payment_method)
SELECT c.cfs_party, c.cfs_account, c.cfs_site, p.invoice_number, p.total,
       CASE p.state WHEN 'paid' THEN 0 WHEN 'settled_unprocessed' THEN 0 WHEN 'nsf' THEN p.total + 30
                    ELSE p.total END,
       p.state <> 'cfs_missing', 'PAD'
  FROM g_pad p JOIN cfs_accounts c ON c.id = p.account_id
 WHERE p.invoice_number IS NOT NULL
UNION ALL
SELECT c.cfs_party, c.cfs_account, c.cfs_site, s.ref_number, s.total,
       CASE WHEN s.state IN ('paid', 'settled_unprocessed') THEN 0 ELSE s.total END,
       true, s.method
  FROM g_st s JOIN cfs_accounts c ON c.id = s.account_id
 WHERE s.method IN ('ONLINE_BANKING', 'EFT', 'INTERNAL') AND s.ref_number IS NOT NULL
   AND s.ref_status IN ('ACTIVE', 'COMPLETED')
UNION ALL
-- DIRECT_PAY: PayBC keeps the transaction under its direct-pay reference number and the REG number
-- (GET /paybc/payment/{ref}/{REG...}), not under a customer site; an abandoned payment never reached it.
-- EJV: the REG number EJV_PAYMENT gives the journalled invoice; FEEDBACK settles it. Neither has a site.
SELECT NULL, NULL, NULL, s.ref_number, s.total,
       CASE WHEN s.ref_status = 'COMPLETED' THEN 0 ELSE s.total END,
       s.method <> 'DIRECT_PAY' OR s.state <> 'created', s.method
  FROM g_st s
 WHERE s.method IN ('DIRECT_PAY', 'EJV') AND s.state <> 'paid_nonbillable' AND s.ref_number IS NOT NULL
   AND s.ref_status IN ('ACTIVE', 'COMPLETED');

-- step: partner disbursements
INSERT INTO partner_disbursements (amount, created_on, feedback_on, partner_code, processed_on, is_reversal,
                                   status_code, target_id, target_type)
SELECT s.total - s.service_fees - s.gst, s.payment_date,
       CASE WHEN i.disbursement_status_code = 'COMPLETED' THEN i.disbursement_date END,
       s.corp_type_code,
       CASE WHEN i.disbursement_status_code = 'COMPLETED' THEN paynb_sandbox.utc(s.eft_paid_day + 1 + time '20:05') END,
       false,
       CASE WHEN i.disbursement_status_code = 'COMPLETED' THEN 'COMPLETED' ELSE 'WAITING_FOR_JOB' END,
       s.id, 'invoice'
  FROM g_st s
  JOIN invoices i ON i.id = s.id
  JOIN corp_types ct ON ct.code = s.corp_type_code AND ct.has_partner_disbursements
 WHERE s.method = 'EFT' AND s.status = 'PAID'
 ORDER BY s.payment_date, s.id;

-- step: disbursement EJV files
-- EJV_PARTNER_DISTRIBUTION (sbc-pay jobs/payment-jobs/tasks/ejv_partner_distribution_task.py), run here every
-- day at 20:05 Pacific: one GI file per run (both partner GLs are outside client 112) with one journal per
-- partner corp type (docs/sandbox-generator.md). Invoice rows, the legacy way: PAID invoices of a partner
-- corp type not paid by INTERNAL, DRAWDOWN or EFT, once the receipt is DISBURSEMENT_DELAY (5) days old; an
-- invoice refunded or credited after it was disbursed is reversed on the next run. EFT invoices go through
-- partner_disbursements, whose processed_on is their run. The run of as_of - 1 has no FEEDBACK yet; CAS
-- answers each INBOX with its own FEEDBACK file.
CREATE TEMP TABLE g_disb ON COMMIT DROP AS
WITH legacy AS (
    SELECT s.id, s.corp_type_code, s.payment_date::date + 5 AS run_day, s.refund_date
      FROM g_st s
      JOIN corp_types ct ON ct.code = s.corp_type_code AND ct.has_partner_disbursements
     WHERE s.method NOT IN ('INTERNAL', 'DRAWDOWN', 'EFT') AND s.status IN ('PAID', 'CREDITED', 'REFUNDED')
       AND s.payment_date IS NOT NULL
       AND EXISTS (SELECT 1 FROM payment_line_items l
                     JOIN distribution_codes d ON d.distribution_code_id = l.fee_distribution_id
                    WHERE l.invoice_id = s.id AND l.total > 0 AND d.disbursement_distribution_code_id IS NOT NULL)
)
SELECT id AS invoice_id, NULL::integer AS pd_id, corp_type_code AS partner, run_day, false AS reversal
  FROM legacy
 WHERE refund_date IS NULL OR refund_date > paynb_sandbox.utc(run_day + time '20:05')
UNION ALL
SELECT id, NULL, corp_type_code,
       (((refund_date AT TIME ZONE 'UTC') AT TIME ZONE 'America/Vancouver') - interval '20 hours 5 minutes')::date + 1,
       true
  FROM legacy
 WHERE refund_date > paynb_sandbox.utc(run_day + time '20:05')
UNION ALL
SELECT pd.target_id, pd.id, pd.partner_code, paynb_sandbox.local_date(pd.processed_on), pd.is_reversal
  FROM partner_disbursements pd
 WHERE pd.processed_on IS NOT NULL AND pd.target_type = 'invoice';
DELETE FROM g_disb WHERE run_day >= CAST(:as_of AS date);

CREATE TEMP TABLE g_disbf ON COMMIT DROP AS
SELECT (SELECT coalesce(max(id), 0) FROM ejv_files) + row_number() OVER (ORDER BY run_day)::integer AS id, run_day,
       CASE WHEN run_day = CAST(:as_of AS date) - 1 THEN 'UPLOADED' ELSE 'COMPLETED' END AS status
  FROM (SELECT DISTINCT run_day FROM g_disb) d;
INSERT INTO ejv_files (id, created_on, completed_on, file_ref, disbursement_status_code, feedback_file_ref, message,
                       file_type, ack_file_ref)
SELECT f.id, paynb_sandbox.utc(f.run_day + time '20:05'), NULL,
       'INBOX.F3505.' || to_char(paynb_sandbox.utc(f.run_day + time '20:05:07'), 'YYYYMMDDHH24MISS'),
       f.status,
       CASE WHEN f.status = 'COMPLETED'
            THEN 'FEEDBACK.F3505.' || to_char(f.run_day + 1 + time '06:20:00', 'YYYYMMDDHH24MISS') END,
       NULL, 'DISBURSEMENT', NULL
  FROM g_disbf f ORDER BY f.id;

CREATE TEMP TABLE g_disbh ON COMMIT DROP AS
SELECT (SELECT coalesce(max(id), 0) FROM ejv_headers) + row_number() OVER (ORDER BY f.id, d.partner)::integer AS id,
       f.id AS file_id, f.run_day, f.status, d.partner
  FROM (SELECT DISTINCT run_day, partner FROM g_disb) d
  JOIN g_disbf f ON f.run_day = d.run_day;
INSERT INTO ejv_headers (id, disbursement_status_code, ejv_file_id, partner_code, payment_account_id, message)
SELECT h.id, h.status, h.file_id, h.partner, NULL, NULL FROM g_disbh h ORDER BY h.id;

INSERT INTO ejv_links (id, link_id, ejv_header_id, disbursement_status_code, message, sequence, link_type)
SELECT (SELECT coalesce(max(id), 0) FROM ejv_links) + row_number() OVER (ORDER BY h.id, d.invoice_id, d.reversal),
       d.invoice_id, h.id, h.status, NULL,
       row_number() OVER (PARTITION BY h.id ORDER BY d.invoice_id, d.reversal), 'invoice'
  FROM g_disb d
  JOIN g_disbh h ON h.run_day = d.run_day AND h.partner = d.partner
 ORDER BY 1;

-- what the pay-queue wrote back from FEEDBACK (cgi_reconciliations.py): COMPLETED or REVERSED and the date
UPDATE invoices i
   SET disbursement_status_code = CASE WHEN coalesce(x.rev_day, x.pay_day) = CAST(:as_of AS date) - 1 THEN 'UPLOADED'
                                       WHEN x.rev_day IS NOT NULL THEN 'REVERSED' ELSE 'COMPLETED' END,
       disbursement_date = CASE WHEN x.pay_day < CAST(:as_of AS date) - 1 THEN (x.pay_day + 1)::timestamp END,
       disbursement_reversal_date = CASE WHEN x.rev_day < CAST(:as_of AS date) - 1 THEN (x.rev_day + 1)::timestamp END
  FROM (SELECT invoice_id, min(run_day) FILTER (WHERE NOT reversal) AS pay_day,
               min(run_day) FILTER (WHERE reversal) AS rev_day
          FROM g_disb WHERE pd_id IS NULL GROUP BY invoice_id) x
 WHERE i.id = x.invoice_id;

-- step: EFT short names
INSERT INTO eft_short_names (id, short_name, created_on, version, cas_supplier_number, email, type, is_generated,
                             cas_supplier_site)
SELECT row_number() OVER (ORDER BY a.id), 'SBX EFT ' || lpad(a.id::text, 5, '0'),
       paynb_sandbox.utc(a.start_date + time '09:00'), 1, NULL, NULL, 'EFT', false, NULL
  FROM g_acc a WHERE a.method = 'EFT' ORDER BY a.id;
INSERT INTO eft_refunds (short_name_id, refund_amount, cas_supplier_number, created_on, refund_email, comment, status,
                         created_by, created_name, disbursement_status_code, disbursement_date, refund_method)
SELECT id, 150.00, '123456', paynb_sandbox.utc(CAST(:as_of AS date) - 30 + time '10:00'), 'finance@example.com',
       'Sandbox overpayment refund', 'APPROVED', 'sandbox-staff', 'Sandbox Staff', 'COMPLETED',
       CAST(:as_of AS date) - 25, 'EFT'
  FROM eft_short_names ORDER BY id LIMIT 1;
