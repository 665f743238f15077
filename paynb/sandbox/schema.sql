-- pay-db sandbox schema: a faithful subset of sbc-pay's migrated database at alembic 968a2e428d4c.
-- Written from the `psql \d` reference (tests/fixtures/sbc-pay/schema/psql_describe_key_tables_*.txt):
-- same table, column, sequence, index and constraint names, types, nullability and defaults.
-- Tables the reference does not show (code tables, fee_codes, filing_types) carry only the columns the
-- sbc-pay models name; no column is invented. tests/test_schema_fidelity.py checks this file against \d.
-- Sandbox-only bookkeeping lives in schema paynb_sandbox, never in public.

SET client_min_messages = warning;

-- ---------------------------------------------------------------------------------------------
-- code tables
-- ---------------------------------------------------------------------------------------------
CREATE TABLE invoice_status_codes (
    code        varchar(20)  NOT NULL,
    description varchar(200) NOT NULL,
    CONSTRAINT invoice_status_codes_pkey PRIMARY KEY (code)
);

CREATE TABLE payment_methods (
    code                 varchar(15)  NOT NULL,
    description          varchar(200) NOT NULL,
    partial_refund       boolean,
    full_refund_statuses varchar[],
    CONSTRAINT payment_methods_pkey PRIMARY KEY (code)
);

CREATE TABLE disbursement_status_codes (
    code        varchar(20)  NOT NULL,
    description varchar(200) NOT NULL,
    CONSTRAINT disbursement_status_codes_pkey PRIMARY KEY (code)
);

CREATE TABLE cfs_account_status_codes (
    code        varchar(40)  NOT NULL,
    description varchar(200) NOT NULL,
    CONSTRAINT cfs_account_status_codes_pkey PRIMARY KEY (code)
);

CREATE TABLE invoice_reference_status_codes (
    code        varchar(20)  NOT NULL,
    description varchar(200) NOT NULL,
    CONSTRAINT invoice_reference_status_codes_pkey PRIMARY KEY (code)
);

CREATE TABLE line_item_status_codes (
    code        varchar(20)  NOT NULL,
    description varchar(200) NOT NULL,
    CONSTRAINT line_item_status_codes_pkey PRIMARY KEY (code)
);

CREATE TABLE notification_status_codes (
    code        varchar(20)  NOT NULL,
    description varchar(200) NOT NULL,
    CONSTRAINT notification_status_codes_pkey PRIMARY KEY (code)
);

CREATE TABLE payment_status_codes (
    code        varchar(20)  NOT NULL,
    description varchar(200) NOT NULL,
    CONSTRAINT payment_status_codes_pkey PRIMARY KEY (code)
);

CREATE TABLE payment_systems (
    code        varchar(10)  NOT NULL,
    description varchar(200) NOT NULL,
    CONSTRAINT payment_systems_pkey PRIMARY KEY (code)
);

CREATE TABLE routing_slip_status_codes (
    code        varchar(20)  NOT NULL,
    description varchar(200) NOT NULL,
    CONSTRAINT routing_slip_status_codes_pkey PRIMARY KEY (code)
);

CREATE TABLE transaction_status_codes (
    code        varchar(20)  NOT NULL,
    description varchar(200) NOT NULL,
    CONSTRAINT transaction_status_codes_pkey PRIMARY KEY (code)
);

CREATE TABLE eft_process_status_codes (
    code        varchar(20)  NOT NULL,
    description varchar(200) NOT NULL,
    CONSTRAINT eft_process_status_codes_pkey PRIMARY KEY (code)
);

CREATE TABLE error_codes (
    code   varchar(50)  NOT NULL,
    title  varchar(100),
    detail varchar(500),
    CONSTRAINT error_codes_pkey PRIMARY KEY (code)
);

CREATE TABLE corp_types (
    code                          varchar(10)  NOT NULL,
    description                   varchar(200) NOT NULL,
    bcol_code_full_service_fee    varchar(20),
    bcol_staff_fee_code           varchar(20),
    is_online_banking_allowed     boolean,
    batch_type                    varchar(2),
    product                       varchar(20),
    bcol_code_partial_service_fee varchar(20),
    bcol_code_no_service_fee      varchar(20),
    has_partner_disbursements     boolean,
    payment_methods               varchar[],
    refund_approval               boolean      NOT NULL DEFAULT false,
    created_on                    timestamp    NOT NULL,
    updated_on                    timestamp,
    created_by                    varchar(50)  NOT NULL,
    created_name                  varchar(100),
    updated_by                    varchar(50),
    updated_name                  varchar(50),
    version                       integer      NOT NULL DEFAULT 1,
    comments                      varchar(250),
    refund_allowed                boolean      NOT NULL DEFAULT true,
    CONSTRAINT corp_types_pkey PRIMARY KEY (code)
);

-- Not in the \d reference: columns as declared by the sbc-pay models (fee_code.py, filing_type.py).
CREATE TABLE fee_codes (
    code    varchar(10)   NOT NULL,
    amount  numeric(19,2) NOT NULL,
    version integer       NOT NULL DEFAULT 1,
    CONSTRAINT fee_codes_pkey PRIMARY KEY (code)
);

CREATE TABLE filing_types (
    code        varchar(10)  NOT NULL,
    description varchar(200) NOT NULL,
    version     integer      NOT NULL DEFAULT 1,
    CONSTRAINT filing_types_pkey PRIMARY KEY (code)
);

CREATE TABLE alembic_version (
    version_num varchar(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- ---------------------------------------------------------------------------------------------
-- accounts
-- ---------------------------------------------------------------------------------------------
CREATE SEQUENCE payment_accounts_id_seq AS integer;
CREATE TABLE payment_accounts (
    id                             integer      NOT NULL DEFAULT nextval('payment_accounts_id_seq'::regclass),
    auth_account_id                varchar(50),
    name                           varchar(250),
    statement_notification_enabled boolean,
    bcol_account                   varchar(50),
    bcol_user_id                   varchar(50),
    payment_method                 varchar(15),
    billable                       boolean,
    pad_tos_accepted_by            varchar(50),
    pad_tos_accepted_date          timestamp,
    pad_activation_date            timestamp,
    eft_enable                     boolean      NOT NULL DEFAULT false,
    branch_name                    varchar(250),
    version                        integer      NOT NULL DEFAULT 1,
    has_nsf_invoices               timestamp,
    has_overdue_invoices           timestamp,
    ob_credit                      numeric(19,2),
    pad_credit                     numeric(19,2),
    eft_credit                     numeric(19,2),
    restrict_ejv                   boolean      NOT NULL DEFAULT false,
    CONSTRAINT payment_accounts_pkey PRIMARY KEY (id),
    CONSTRAINT payment_account_payment_method FOREIGN KEY (payment_method) REFERENCES payment_methods(code)
);
ALTER SEQUENCE payment_accounts_id_seq OWNED BY payment_accounts.id;
CREATE INDEX ix_payment_accounts_auth_account_id ON payment_accounts (auth_account_id);
CREATE INDEX ix_payment_accounts_bcol_account ON payment_accounts (bcol_account);
CREATE INDEX ix_payment_accounts_bcol_user_id ON payment_accounts (bcol_user_id);

-- sql_versioning history of payment_accounts: the row as it was before each update, keyed (id, version).
-- Built from the migrations that create and alter it (fb3ba97b603a, fc32e7db4493, a7b9c2d4e6f8,
-- b313916b778a, f52120aa9993); see docs/pad-credit.md.
CREATE TABLE payment_accounts_history (
    id                             integer       NOT NULL,
    auth_account_id                varchar(50),
    name                           varchar(250),
    branch_name                    varchar(250),
    payment_method                 varchar(15),
    bcol_user_id                   varchar(50),
    bcol_account                   varchar(50),
    statement_notification_enabled boolean,
    billable                       boolean,
    eft_enable                     boolean       NOT NULL,
    pad_activation_date            timestamp,
    pad_tos_accepted_date          timestamp,
    pad_tos_accepted_by            varchar(50),
    version                        integer       NOT NULL,
    changed                        timestamp,
    has_nsf_invoices               timestamp,
    has_overdue_invoices           timestamp,
    ob_credit                      numeric(19,2),
    pad_credit                     numeric(19,2),
    eft_credit                     numeric(19,2),
    restrict_ejv                   boolean       NOT NULL DEFAULT false,
    CONSTRAINT payment_accounts_history_pkey PRIMARY KEY (id, version),
    CONSTRAINT payment_accounts_history_payment_method_fkey FOREIGN KEY (payment_method) REFERENCES payment_methods(code)
);
CREATE INDEX ix_payment_accounts_history_auth_account_id ON payment_accounts_history (auth_account_id);
CREATE INDEX ix_payment_accounts_history_bcol_account ON payment_accounts_history (bcol_account);
CREATE INDEX ix_payment_accounts_history_bcol_user_id ON payment_accounts_history (bcol_user_id);

CREATE SEQUENCE cfs_accounts_id_seq AS integer;
CREATE TABLE cfs_accounts (
    id                        integer     NOT NULL DEFAULT nextval('cfs_accounts_id_seq'::regclass),
    cfs_account               varchar(50),
    cfs_party                 varchar(50),
    cfs_site                  varchar(50),
    bank_number               varchar(50),
    bank_branch_number        varchar(50),
    account_id                integer,
    contact_party             varchar(50),
    payment_instrument_number varchar(50),
    status                    varchar(40),
    bank_account_number       varchar,
    version                   integer     NOT NULL DEFAULT 1,
    payment_method            varchar(15),
    CONSTRAINT cfs_accounts_pkey PRIMARY KEY (id),
    CONSTRAINT cfs_account_account_id_fkey FOREIGN KEY (account_id) REFERENCES payment_accounts(id),
    CONSTRAINT cfs_account_status_code_fk FOREIGN KEY (status) REFERENCES cfs_account_status_codes(code),
    CONSTRAINT cfs_accounts_payment_method_fkey FOREIGN KEY (payment_method) REFERENCES payment_methods(code)
);
ALTER SEQUENCE cfs_accounts_id_seq OWNED BY cfs_accounts.id;
CREATE INDEX ix_cfs_accounts_account_id ON cfs_accounts (account_id);
CREATE INDEX ix_cfs_accounts_bank_account_number ON cfs_accounts (bank_account_number);
CREATE INDEX ix_cfs_accounts_bank_branch_number ON cfs_accounts (bank_branch_number);
CREATE INDEX ix_cfs_accounts_bank_number ON cfs_accounts (bank_number);
CREATE INDEX ix_cfs_accounts_cfs_account ON cfs_accounts (cfs_account);

-- ---------------------------------------------------------------------------------------------
-- GL / fees
-- ---------------------------------------------------------------------------------------------
CREATE SEQUENCE distribution_code_distribution_code_id_seq AS integer;
CREATE TABLE distribution_codes (
    created_on                              timestamp    NOT NULL,
    updated_on                              timestamp,
    distribution_code_id                    integer      NOT NULL DEFAULT nextval('distribution_code_distribution_code_id_seq'::regclass),
    name                                    varchar(250),
    client                                  varchar(50),
    responsibility_centre                   varchar(50),
    service_line                            varchar(50),
    stob                                    varchar(50),
    project_code                            varchar(50),
    start_date                              date         NOT NULL,
    end_date                                date,
    created_by                              varchar(50)  NOT NULL,
    created_name                            varchar(100),
    updated_by                              varchar(50),
    updated_name                            varchar(50),
    disbursement_distribution_code_id       integer,
    service_fee_distribution_code_id        integer,
    stop_ejv                                boolean,
    account_id                              integer,
    version                                 integer      NOT NULL DEFAULT 1,
    statutory_fees_gst_distribution_code_id integer,
    service_fee_gst_distribution_code_id    integer,
    comments                                varchar(250),
    CONSTRAINT distribution_codes_pkey PRIMARY KEY (distribution_code_id),
    CONSTRAINT disbursement_distribution_code_id_fk FOREIGN KEY (disbursement_distribution_code_id)
        REFERENCES distribution_codes(distribution_code_id),
    CONSTRAINT distribution_codes_payment_accounts_fk FOREIGN KEY (account_id) REFERENCES payment_accounts(id),
    CONSTRAINT distribution_codes_service_fee_gst_distribution_code_id_fkey FOREIGN KEY (service_fee_gst_distribution_code_id)
        REFERENCES distribution_codes(distribution_code_id),
    CONSTRAINT distribution_codes_statutory_fees_gst_distribution_code_id_fkey FOREIGN KEY (statutory_fees_gst_distribution_code_id)
        REFERENCES distribution_codes(distribution_code_id),
    CONSTRAINT service_fee_distribution_code_id_fk FOREIGN KEY (service_fee_distribution_code_id)
        REFERENCES distribution_codes(distribution_code_id)
);
ALTER SEQUENCE distribution_code_distribution_code_id_seq OWNED BY distribution_codes.distribution_code_id;
CREATE INDEX ix_distribution_codes_account_id ON distribution_codes (account_id);

CREATE SEQUENCE fee_schedule_fee_schedule_id_seq AS integer;
CREATE TABLE fee_schedules (
    fee_schedule_id           integer      NOT NULL DEFAULT nextval('fee_schedule_fee_schedule_id_seq'::regclass),
    filing_type_code          varchar(10)  NOT NULL,
    corp_type_code            varchar(10)  NOT NULL,
    fee_code                  varchar(10)  NOT NULL,
    fee_start_date            date         NOT NULL,
    fee_end_date              date,
    future_effective_fee_code varchar(10),
    priority_fee_code         varchar(10),
    service_fee_code          varchar(10),
    variable                  boolean,
    show_on_pricelist         boolean      NOT NULL DEFAULT false,
    created_on                timestamp    NOT NULL,
    updated_on                timestamp,
    created_by                varchar(50)  NOT NULL,
    created_name              varchar(100),
    updated_by                varchar(50),
    updated_name              varchar(50),
    version                   integer      NOT NULL DEFAULT 1,
    comments                  varchar(250),
    statutory_fees_gst_added  boolean      NOT NULL DEFAULT false,
    service_fees_gst_added    boolean      NOT NULL DEFAULT false,
    CONSTRAINT fee_schedules_pkey PRIMARY KEY (fee_schedule_id),
    CONSTRAINT unique_fee_sched_1 UNIQUE (filing_type_code, corp_type_code, fee_code),
    CONSTRAINT fee_schedule_corp_types_code_fkey FOREIGN KEY (corp_type_code) REFERENCES corp_types(code),
    CONSTRAINT fee_schedule_fee_code_fkey FOREIGN KEY (fee_code) REFERENCES fee_codes(code),
    CONSTRAINT fee_schedule_filing_type_code_fkey FOREIGN KEY (filing_type_code) REFERENCES filing_types(code),
    CONSTRAINT fee_schedule_future_effective_fee_code_fkey FOREIGN KEY (future_effective_fee_code) REFERENCES fee_codes(code),
    CONSTRAINT fee_schedule_priority_fee_code_fkey FOREIGN KEY (priority_fee_code) REFERENCES fee_codes(code),
    CONSTRAINT service_fee_code_fk FOREIGN KEY (service_fee_code) REFERENCES fee_codes(code)
);
ALTER SEQUENCE fee_schedule_fee_schedule_id_seq OWNED BY fee_schedules.fee_schedule_id;

CREATE SEQUENCE distribution_code_link_distribution_link_id_seq AS integer;
CREATE TABLE distribution_code_links (
    distribution_link_id integer NOT NULL DEFAULT nextval('distribution_code_link_distribution_link_id_seq'::regclass),
    fee_schedule_id      integer,
    distribution_code_id integer,
    CONSTRAINT distribution_code_links_pkey PRIMARY KEY (distribution_link_id),
    CONSTRAINT distribution_code_link_distribution_code_id_fkey FOREIGN KEY (distribution_code_id)
        REFERENCES distribution_codes(distribution_code_id),
    CONSTRAINT distribution_code_link_fee_schedules_id_fkey FOREIGN KEY (fee_schedule_id)
        REFERENCES fee_schedules(fee_schedule_id)
);
ALTER SEQUENCE distribution_code_link_distribution_link_id_seq OWNED BY distribution_code_links.distribution_link_id;

CREATE SEQUENCE tax_rates_id_seq AS integer;
CREATE TABLE tax_rates (
    id                 integer      NOT NULL DEFAULT nextval('tax_rates_id_seq'::regclass),
    tax_type           varchar(10)  NOT NULL,
    rate               numeric(6,4) NOT NULL,
    start_date         timestamptz  NOT NULL,
    effective_end_date timestamptz,
    description        varchar(200),
    updated_by         varchar(50)  NOT NULL,
    updated_name       varchar(50)  NOT NULL,
    version            integer      NOT NULL DEFAULT 1,
    CONSTRAINT tax_rates_pkey PRIMARY KEY (id)
);
ALTER SEQUENCE tax_rates_id_seq OWNED BY tax_rates.id;

CREATE TABLE non_gov_disbursement_config (
    corp_type_code      varchar(10)  NOT NULL,
    cas_supplier_number varchar(50),
    cas_supplier_site   varchar(10),
    disabled            boolean      NOT NULL DEFAULT false,
    created_on          timestamp    NOT NULL DEFAULT now(),
    updated_on          timestamp,
    created_by          varchar(50)  NOT NULL DEFAULT 'migration'::character varying,
    created_name        varchar(100),
    updated_by          varchar(50),
    updated_name        varchar(100),
    CONSTRAINT non_gov_disbursement_config_pkey PRIMARY KEY (corp_type_code),
    CONSTRAINT non_gov_disbursement_config_corp_type_code_fkey FOREIGN KEY (corp_type_code) REFERENCES corp_types(code)
);

-- ---------------------------------------------------------------------------------------------
-- invoices and what hangs off them
-- ---------------------------------------------------------------------------------------------
CREATE SEQUENCE invoices_id_seq AS integer;
CREATE TABLE invoices (
    created_by                 varchar(50)   NOT NULL,
    created_on                 timestamp     NOT NULL,
    updated_by                 varchar(50),
    updated_on                 timestamp,
    id                         integer       NOT NULL DEFAULT nextval('invoices_id_seq'::regclass),
    invoice_status_code        varchar(20)   NOT NULL,
    total                      numeric(19,2) NOT NULL,
    paid                       numeric(19,2),
    payment_date               timestamp,
    refund                     numeric(19,2),
    routing_slip               varchar(50),
    filing_id                  varchar(50),
    folio_number               varchar(50),
    service_fees               numeric(19,2),
    business_identifier        varchar(20),
    corp_type_code             varchar(10),
    created_name               varchar(100),
    updated_name               varchar(50),
    dat_number                 varchar(50),
    bcol_account               varchar(50),
    payment_account_id         integer,
    cfs_account_id             integer,
    payment_method_code        varchar(15)   NOT NULL,
    disbursement_status_code   varchar(20),
    details                    jsonb,
    disbursement_date          timestamp,
    refund_date                timestamp,
    overdue_date               timestamp,
    disbursement_reversal_date timestamp,
    gst                        numeric(19,2) NOT NULL DEFAULT '0'::numeric,
    CONSTRAINT invoices_pkey PRIMARY KEY (id),
    CONSTRAINT disbursement_status_codes_fk FOREIGN KEY (disbursement_status_code) REFERENCES disbursement_status_codes(code),
    CONSTRAINT fk_cfs_accounts_id FOREIGN KEY (cfs_account_id) REFERENCES cfs_accounts(id),
    CONSTRAINT invoice_corp_types_code_fkey FOREIGN KEY (corp_type_code) REFERENCES corp_types(code),
    CONSTRAINT invoice_invoice_status_code_fkey FOREIGN KEY (invoice_status_code) REFERENCES invoice_status_codes(code),
    CONSTRAINT invoice_payment_method FOREIGN KEY (payment_method_code) REFERENCES payment_methods(code),
    CONSTRAINT payment_accounts_payment_accounts_id FOREIGN KEY (payment_account_id) REFERENCES payment_accounts(id)
);
ALTER SEQUENCE invoices_id_seq OWNED BY invoices.id;
CREATE INDEX idx_invoice_invoice_status_code_payment_account_idx ON invoices (payment_account_id, invoice_status_code);
CREATE INDEX ix_invoices_bcol_account ON invoices (bcol_account);
CREATE INDEX ix_invoices_created_on ON invoices (created_on);
CREATE INDEX ix_invoices_dat_number ON invoices (dat_number);
CREATE INDEX ix_invoices_folio_number ON invoices (folio_number);
CREATE INDEX ix_invoices_invoice_status_code ON invoices (invoice_status_code);
CREATE INDEX ix_invoices_payment_account_created_on ON invoices (payment_account_id, created_on);
CREATE INDEX ix_invoices_payment_account_id ON invoices (payment_account_id);
CREATE INDEX ix_invoices_payment_method_code ON invoices (payment_method_code);
CREATE INDEX ix_invoices_routing_slip ON invoices (routing_slip);

CREATE SEQUENCE invoice_references_id_seq AS integer;
CREATE TABLE invoice_references (
    id               integer     NOT NULL DEFAULT nextval('invoice_references_id_seq'::regclass),
    invoice_id       integer     NOT NULL,
    invoice_number   varchar(50),
    reference_number varchar(50),
    status_code      varchar(20) NOT NULL,
    created_on       timestamp,
    is_consolidated  boolean     NOT NULL DEFAULT false,
    CONSTRAINT invoice_references_pkey PRIMARY KEY (id),
    CONSTRAINT invoice_reference_status_codes_fkey FOREIGN KEY (status_code) REFERENCES invoice_reference_status_codes(code),
    CONSTRAINT invoices_reference_invoices_id_fkey FOREIGN KEY (invoice_id) REFERENCES invoices(id)
);
ALTER SEQUENCE invoice_references_id_seq OWNED BY invoice_references.id;
CREATE INDEX ix_invoice_references_invoice_id ON invoice_references (invoice_id);
CREATE INDEX ix_invoice_references_invoice_number ON invoice_references (invoice_number);
CREATE INDEX ix_invoice_references_is_consolidated ON invoice_references (is_consolidated);
CREATE INDEX ix_invoice_references_status_code ON invoice_references (status_code);

CREATE SEQUENCE payment_line_items_id_seq AS integer;
CREATE TABLE payment_line_items (
    id                    integer       NOT NULL DEFAULT nextval('payment_line_items_id_seq'::regclass),
    invoice_id            integer       NOT NULL,
    filing_fees           numeric(19,2) NOT NULL,
    fee_schedule_id       integer       NOT NULL,
    quantity              integer,
    description           varchar(200),
    pst                   numeric(19,2),
    total                 numeric(19,2) NOT NULL,
    line_item_status_code varchar(20)   NOT NULL,
    future_effective_fees numeric(19,2),
    priority_fees         numeric(19,2),
    waived_by             varchar(50),
    waived_fees           numeric(19,2),
    fee_distribution_id   integer,
    service_fees          numeric(19,2),
    service_fees_gst      numeric(10,2) NOT NULL DEFAULT '0'::numeric,
    statutory_fees_gst    numeric(10,2) NOT NULL DEFAULT '0'::numeric,
    CONSTRAINT payment_line_items_pkey PRIMARY KEY (id),
    CONSTRAINT fee_distribution_id_fk FOREIGN KEY (fee_distribution_id) REFERENCES distribution_codes(distribution_code_id),
    CONSTRAINT fk_line_item_status FOREIGN KEY (line_item_status_code) REFERENCES line_item_status_codes(code),
    CONSTRAINT payment_line_item_fee_schedule_id_fkey FOREIGN KEY (fee_schedule_id) REFERENCES fee_schedules(fee_schedule_id),
    CONSTRAINT payment_line_item_invoices_id_fkey FOREIGN KEY (invoice_id) REFERENCES invoices(id)
);
ALTER SEQUENCE payment_line_items_id_seq OWNED BY payment_line_items.id;
CREATE INDEX ix_payment_line_items_invoice_id ON payment_line_items (invoice_id);

CREATE SEQUENCE payments_id_seq AS integer;
CREATE TABLE payments (
    id                    integer     NOT NULL DEFAULT nextval('payments_id_seq'::regclass),
    payment_system_code   varchar(10) NOT NULL,
    payment_method_code   varchar(15) NOT NULL,
    payment_status_code   varchar(20),
    paid_amount           numeric,
    payment_date          timestamp,
    invoice_number        varchar(50),
    payment_account_id    integer,
    invoice_amount        numeric,
    cons_inv_number       varchar(50),
    created_by            varchar(50),
    receipt_number        varchar(50),
    cheque_receipt_number varchar(50),
    is_routing_slip       boolean,
    paid_usd_amount       numeric,
    CONSTRAINT payments_pkey PRIMARY KEY (id),
    CONSTRAINT payment_payment_account_id FOREIGN KEY (payment_account_id) REFERENCES payment_accounts(id),
    CONSTRAINT payment_payment_method_code_fkey FOREIGN KEY (payment_method_code) REFERENCES payment_methods(code),
    CONSTRAINT payment_payment_status_code_fkey FOREIGN KEY (payment_status_code) REFERENCES payment_status_codes(code),
    CONSTRAINT payment_payment_system_code_fkey FOREIGN KEY (payment_system_code) REFERENCES payment_systems(code)
);
ALTER SEQUENCE payments_id_seq OWNED BY payments.id;
CREATE INDEX ix_payments_cheque_receipt_number ON payments (cheque_receipt_number);
CREATE INDEX ix_payments_cons_inv_number ON payments (cons_inv_number);
CREATE INDEX ix_payments_invoice_number ON payments (invoice_number);
CREATE INDEX ix_payments_payment_account_id ON payments (payment_account_id);
CREATE INDEX ix_payments_receipt_number ON payments (receipt_number);

CREATE TABLE payment_transactions (
    id                     uuid          NOT NULL,
    status_code            varchar(20)   NOT NULL,
    payment_id             integer       NOT NULL,
    pay_system_url         varchar(2000),
    transaction_start_time timestamp     NOT NULL,
    transaction_end_time   timestamp,
    client_system_url      varchar(500),
    pay_response_url       varchar(2000),
    pay_system_reason_code varchar(2000),
    CONSTRAINT payment_transactions_pkey PRIMARY KEY (id),
    CONSTRAINT payment_transaction_status_code_fkey FOREIGN KEY (status_code) REFERENCES transaction_status_codes(code),
    CONSTRAINT payments_transaction_payments_id_fkey FOREIGN KEY (payment_id) REFERENCES payments(id)
);

CREATE SEQUENCE receipts_id_seq AS integer;
CREATE TABLE receipts (
    id             integer          NOT NULL DEFAULT nextval('receipts_id_seq'::regclass),
    invoice_id     integer          NOT NULL,
    receipt_number varchar(50)      NOT NULL,
    receipt_date   timestamp,
    receipt_amount double precision,
    CONSTRAINT receipts_pkey PRIMARY KEY (id),
    CONSTRAINT receipt_invoices_id_fkey FOREIGN KEY (invoice_id) REFERENCES invoices(id)
);
ALTER SEQUENCE receipts_id_seq OWNED BY receipts.id;
CREATE INDEX ix_receipts_invoice_id ON receipts (invoice_id);

-- ---------------------------------------------------------------------------------------------
-- routing slips, refunds, credits
-- ---------------------------------------------------------------------------------------------
CREATE SEQUENCE routing_slips_id_seq AS integer;
CREATE TABLE routing_slips (
    created_on            timestamp    NOT NULL,
    updated_on            timestamp,
    id                    integer      NOT NULL DEFAULT nextval('routing_slips_id_seq'::regclass),
    number                varchar,
    payment_account_id    integer,
    status                varchar,
    total                 numeric,
    remaining_amount      numeric,
    created_by            varchar(50)  NOT NULL,
    created_name          varchar(100),
    updated_by            varchar(50),
    updated_name          varchar(50),
    routing_slip_date     date         NOT NULL,
    parent_number         varchar,
    refund_amount         numeric,
    total_usd             numeric,
    cas_version_suffix    integer,
    refund_status         varchar(50),
    contact_name          varchar(100),
    street                varchar(100),
    street_additional     varchar(100),
    city                  varchar(50),
    region                varchar(50),
    postal_code           varchar(20),
    country               varchar(50),
    delivery_instructions varchar(100),
    cas_mismatch          boolean      NOT NULL DEFAULT false,
    CONSTRAINT routing_slips_pkey PRIMARY KEY (id),
    CONSTRAINT routing_slips_number_key UNIQUE (number),
    CONSTRAINT routing_slips_parent_id_fkey FOREIGN KEY (parent_number) REFERENCES routing_slips(number),
    CONSTRAINT routing_slips_payment_account_id_fkey FOREIGN KEY (payment_account_id) REFERENCES payment_accounts(id),
    CONSTRAINT routing_slips_status_fkey FOREIGN KEY (status) REFERENCES routing_slip_status_codes(code)
);
ALTER SEQUENCE routing_slips_id_seq OWNED BY routing_slips.id;
CREATE INDEX ix_routing_slips_payment_account_id ON routing_slips (payment_account_id);
CREATE INDEX ix_routing_slips_status ON routing_slips (status);

CREATE SEQUENCE comments_id_seq AS integer;
CREATE TABLE comments (
    id                  integer       NOT NULL DEFAULT nextval('comments_id_seq'::regclass),
    comment             varchar(4096),
    "timestamp"         timestamptz,
    routing_slip_number varchar,
    submitter_name      varchar(50)   NOT NULL,
    CONSTRAINT comments_pkey PRIMARY KEY (id),
    CONSTRAINT comments_routing_slip_number_fkey FOREIGN KEY (routing_slip_number) REFERENCES routing_slips(number)
);
ALTER SEQUENCE comments_id_seq OWNED BY comments.id;
CREATE INDEX ix_comments_routing_slip_number ON comments (routing_slip_number);

CREATE SEQUENCE refunds_id_seq AS integer;
CREATE TABLE refunds (
    id                 integer      NOT NULL DEFAULT nextval('refunds_id_seq'::regclass),
    invoice_id         integer,
    requested_date     timestamp,
    reason             varchar(250),
    requested_by       varchar(50),
    routing_slip_id    integer,
    details            jsonb,
    decision_made_by   varchar(50),
    decision_date      timestamp,
    gl_posted          timestamp,
    gl_error           varchar(250),
    decline_reason     varchar,
    notification_email varchar(100),
    refund_method      varchar,
    staff_comment      varchar,
    status             varchar(25)  NOT NULL,
    type               varchar(25)  NOT NULL,
    requester_email    varchar(100),
    CONSTRAINT refunds_pkey PRIMARY KEY (id),
    CONSTRAINT routing_slip_invoice_id_check CHECK (NOT (routing_slip_id IS NULL AND invoice_id IS NULL)),
    CONSTRAINT refunds_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES invoices(id),
    CONSTRAINT refunds_rs_fk FOREIGN KEY (routing_slip_id) REFERENCES routing_slips(id)
);
ALTER SEQUENCE refunds_id_seq OWNED BY refunds.id;
CREATE INDEX ix_refunds_id ON refunds (id);
CREATE INDEX ix_refunds_status ON refunds (status);
CREATE INDEX ix_refunds_type ON refunds (type);

CREATE SEQUENCE refunds_partial_id_seq AS integer;
CREATE TABLE refunds_partial (
    id                   integer       NOT NULL DEFAULT nextval('refunds_partial_id_seq'::regclass),
    payment_line_item_id integer       NOT NULL,
    refund_type          varchar(50),
    refund_amount        numeric(19,2) NOT NULL,
    created_on           timestamp     NOT NULL,
    updated_on           timestamp,
    created_by           varchar(50)   NOT NULL,
    created_name         varchar(100),
    updated_by           varchar(50),
    updated_name         varchar(50),
    version              integer       NOT NULL DEFAULT 1,
    gl_posted            timestamp,
    invoice_id           integer       NOT NULL,
    status               varchar(20),
    gl_error             varchar(250),
    is_credit            boolean       NOT NULL DEFAULT false,
    refund_id            integer,
    CONSTRAINT refunds_partial_pkey PRIMARY KEY (id),
    CONSTRAINT refunds_partial_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES invoices(id),
    CONSTRAINT refunds_partial_payment_line_item_id_fkey FOREIGN KEY (payment_line_item_id) REFERENCES payment_line_items(id),
    CONSTRAINT refunds_partial_refund_id_fkey FOREIGN KEY (refund_id) REFERENCES refunds(id)
);
ALTER SEQUENCE refunds_partial_id_seq OWNED BY refunds_partial.id;
CREATE INDEX ix_refunds_partial_payment_line_item_id ON refunds_partial (payment_line_item_id);

-- sql_versioning history of refunds_partial (fb3ba97b603a, aae01971bd53, 59db97e9432e, d33af974c7c6,
-- 94ca57d30196, 725543789c2a); see docs/pad-credit.md.
CREATE TABLE refunds_partial_history (
    id                   integer       NOT NULL,
    payment_line_item_id integer       NOT NULL,
    refund_amount        numeric(19,2) NOT NULL,
    refund_type          varchar(50),
    created_on           timestamp     NOT NULL,
    updated_on           timestamp,
    created_by           varchar(50)   NOT NULL,
    created_name         varchar(100),
    updated_by           varchar(50),
    updated_name         varchar(50),
    version              integer       NOT NULL,
    changed              timestamp,
    gl_posted            timestamp,
    invoice_id           integer       NOT NULL,
    status               varchar(20),
    gl_error             varchar(250),
    is_credit            boolean       NOT NULL DEFAULT false,
    refund_id            integer,
    CONSTRAINT refunds_partial_history_pkey PRIMARY KEY (id, version),
    CONSTRAINT refunds_partial_history_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES invoices(id),
    CONSTRAINT refunds_partial_history_payment_line_item_id_fkey FOREIGN KEY (payment_line_item_id) REFERENCES payment_line_items(id)
);
CREATE INDEX ix_refunds_partial_history_payment_line_item_id ON refunds_partial_history (payment_line_item_id);

CREATE SEQUENCE credits_id_seq AS integer;
CREATE TABLE credits (
    id                 integer          NOT NULL DEFAULT nextval('credits_id_seq'::regclass),
    cfs_identifier     varchar(50),
    is_credit_memo     boolean,
    amount             double precision NOT NULL,
    remaining_amount   double precision NOT NULL,
    account_id         integer,
    details            varchar(200),
    created_on         timestamp,
    cfs_site           varchar(50),
    created_invoice_id integer,
    CONSTRAINT credits_pkey PRIMARY KEY (id),
    CONSTRAINT credits_account_id_fkey FOREIGN KEY (account_id) REFERENCES payment_accounts(id),
    CONSTRAINT fk_credits_created_invoice_id_invoices FOREIGN KEY (created_invoice_id) REFERENCES invoices(id)
);
ALTER SEQUENCE credits_id_seq OWNED BY credits.id;
CREATE INDEX ix_credits_account_id ON credits (account_id);
CREATE INDEX ix_credits_cfs_identifier ON credits (cfs_identifier);
CREATE INDEX ix_credits_created_invoice_id ON credits (created_invoice_id);

-- renamed from cfs_credit_invoices; the sequence and primary key kept the old name
CREATE SEQUENCE cfs_credit_invoices_id_seq AS integer;
CREATE TABLE applied_credits (
    id             integer     NOT NULL DEFAULT nextval('cfs_credit_invoices_id_seq'::regclass),
    account_id     integer,
    application_id integer,
    amount_applied numeric     NOT NULL,
    cfs_account    varchar(50) NOT NULL,
    cfs_identifier varchar(50) NOT NULL,
    credit_id      integer,
    created_on     timestamp   NOT NULL,
    invoice_amount numeric     NOT NULL,
    invoice_number varchar(50) NOT NULL,
    invoice_id     integer,
    CONSTRAINT cfs_credit_invoices_pkey PRIMARY KEY (id),
    CONSTRAINT applied_credits_account_id_fkey FOREIGN KEY (account_id) REFERENCES payment_accounts(id),
    CONSTRAINT applied_credits_credit_id_fkey FOREIGN KEY (credit_id) REFERENCES credits(id),
    CONSTRAINT fk_applied_credits_invoice_id_invoices FOREIGN KEY (invoice_id) REFERENCES invoices(id)
);
ALTER SEQUENCE cfs_credit_invoices_id_seq OWNED BY applied_credits.id;
CREATE INDEX ix_applied_credits_application_id ON applied_credits (application_id);
CREATE INDEX ix_applied_credits_cfs_account ON applied_credits (cfs_account);
CREATE INDEX ix_applied_credits_cfs_identifier ON applied_credits (cfs_identifier);
CREATE INDEX ix_applied_credits_credit_id ON applied_credits (credit_id);
CREATE INDEX ix_applied_credits_invoice_id ON applied_credits (invoice_id);
CREATE INDEX ix_cfs_credit_invoices_account_id ON applied_credits (account_id);

CREATE SEQUENCE non_sufficient_funds_id_seq AS integer;
CREATE TABLE non_sufficient_funds (
    id             integer     NOT NULL DEFAULT nextval('non_sufficient_funds_id_seq'::regclass),
    description    varchar(50),
    invoice_id     integer     NOT NULL,
    invoice_number varchar(50) NOT NULL,
    cfs_account    varchar(50),
    CONSTRAINT non_sufficient_funds_pkey PRIMARY KEY (id),
    CONSTRAINT non_sufficient_funds_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES invoices(id)
);
ALTER SEQUENCE non_sufficient_funds_id_seq OWNED BY non_sufficient_funds.id;
CREATE INDEX ix_non_sufficient_funds_invoice_number ON non_sufficient_funds (invoice_number);

CREATE SEQUENCE partner_disbursements_id_seq AS integer;
CREATE TABLE partner_disbursements (
    id           integer     NOT NULL DEFAULT nextval('partner_disbursements_id_seq'::regclass),
    amount       numeric     NOT NULL,
    created_on   timestamp   NOT NULL,
    feedback_on  timestamp,
    partner_code varchar(50) NOT NULL,
    processed_on timestamp,
    is_reversal  boolean     NOT NULL,
    status_code  varchar(25) NOT NULL,  -- no FK in pay-db: WAITING_FOR_JOB/CANCELLED are not codes
    target_id    integer,
    target_type  varchar(50),
    CONSTRAINT partner_disbursements_pkey PRIMARY KEY (id)
);
ALTER SEQUENCE partner_disbursements_id_seq OWNED BY partner_disbursements.id;

-- ---------------------------------------------------------------------------------------------
-- statements
-- ---------------------------------------------------------------------------------------------
CREATE SEQUENCE statement_settings_id_seq AS integer;
CREATE TABLE statement_settings (
    id                 integer     NOT NULL DEFAULT nextval('statement_settings_id_seq'::regclass),
    frequency          varchar(50),
    payment_account_id integer,
    from_date          date        NOT NULL,
    to_date            date,
    CONSTRAINT statement_settings_pkey PRIMARY KEY (id),
    CONSTRAINT statement_settings_payment_accounts_id_fkey FOREIGN KEY (payment_account_id) REFERENCES payment_accounts(id)
);
ALTER SEQUENCE statement_settings_id_seq OWNED BY statement_settings.id;
CREATE INDEX ix_statement_settings_frequency ON statement_settings (frequency);
CREATE INDEX ix_statement_settings_payment_account_id ON statement_settings (payment_account_id);

CREATE SEQUENCE statements_id_seq AS integer;
CREATE TABLE statements (
    id                        integer      NOT NULL DEFAULT nextval('statements_id_seq'::regclass),
    frequency                 varchar(50),
    from_date                 date         NOT NULL,
    to_date                   date,
    created_on                date         NOT NULL,
    statement_settings_id     integer,
    payment_account_id        integer,
    notification_date         date,
    notification_status_code  varchar(20),
    is_interim_statement      boolean      NOT NULL DEFAULT false,
    overdue_notification_date date,
    payment_methods           varchar(100),
    is_empty                  boolean      NOT NULL DEFAULT true,
    CONSTRAINT statements_pkey PRIMARY KEY (id),
    CONSTRAINT statement_notification_status_codes_fk FOREIGN KEY (notification_status_code) REFERENCES notification_status_codes(code),
    CONSTRAINT statement_payment_accounts_id_fkey FOREIGN KEY (payment_account_id) REFERENCES payment_accounts(id),
    CONSTRAINT statement_statement_settings_id_fkey FOREIGN KEY (statement_settings_id) REFERENCES statement_settings(id)
);
ALTER SEQUENCE statements_id_seq OWNED BY statements.id;
CREATE INDEX ix_statements_account_freq_dates ON statements (payment_account_id, frequency, from_date, to_date);
CREATE INDEX ix_statements_frequency ON statements (frequency);
CREATE INDEX ix_statements_payment_account_id ON statements (payment_account_id);
CREATE INDEX ix_statements_statement_settings_id ON statements (statement_settings_id);

CREATE SEQUENCE statement_invoices_id_seq AS integer;
CREATE TABLE statement_invoices (
    id           integer NOT NULL DEFAULT nextval('statement_invoices_id_seq'::regclass),
    statement_id integer NOT NULL,
    invoice_id   integer NOT NULL,
    CONSTRAINT statement_invoices_pkey PRIMARY KEY (id),
    CONSTRAINT statement_invoicess_invoices_id_fkey FOREIGN KEY (invoice_id) REFERENCES invoices(id),
    CONSTRAINT statements_invoices_statements_id_fkey FOREIGN KEY (statement_id) REFERENCES statements(id)
);
ALTER SEQUENCE statement_invoices_id_seq OWNED BY statement_invoices.id;
CREATE INDEX ix_statement_invoices_invoice_id ON statement_invoices (invoice_id);
CREATE INDEX ix_statement_invoices_statement_id ON statement_invoices (statement_id);
CREATE UNIQUE INDEX ix_statement_invoices_statement_invoice ON statement_invoices (statement_id, invoice_id);

CREATE SEQUENCE statement_recipients_id_seq AS integer;
CREATE TABLE statement_recipients (
    id                 integer      NOT NULL DEFAULT nextval('statement_recipients_id_seq'::regclass),
    auth_user_id       integer,
    first_name         varchar(200),
    last_name          varchar(200),
    email              varchar(200),
    payment_account_id integer,
    CONSTRAINT statement_recipients_pkey PRIMARY KEY (id),
    CONSTRAINT statement_recipients_payment_accounts_id_fkey FOREIGN KEY (payment_account_id) REFERENCES payment_accounts(id)
);
ALTER SEQUENCE statement_recipients_id_seq OWNED BY statement_recipients.id;
CREATE INDEX ix_statement_recipients_auth_user_id ON statement_recipients (auth_user_id);
CREATE INDEX ix_statement_recipients_payment_account_id ON statement_recipients (payment_account_id);

-- ---------------------------------------------------------------------------------------------
-- settlement files, EJV
-- ---------------------------------------------------------------------------------------------
CREATE SEQUENCE cas_settlements_id_seq AS integer;
CREATE TABLE cas_settlements (
    id           integer   NOT NULL DEFAULT nextval('cas_settlements_id_seq'::regclass),
    received_on  timestamp NOT NULL,
    file_name    varchar   NOT NULL,  -- no unique constraint in pay-db
    processed_on timestamp,
    CONSTRAINT cas_settlements_pkey PRIMARY KEY (id)
);
ALTER SEQUENCE cas_settlements_id_seq OWNED BY cas_settlements.id;

CREATE SEQUENCE ejv_files_id_seq AS integer;
CREATE TABLE ejv_files (
    id                       integer     NOT NULL DEFAULT nextval('ejv_files_id_seq'::regclass),
    created_on               timestamp   NOT NULL,
    completed_on             timestamp,
    file_ref                 varchar     NOT NULL,
    disbursement_status_code varchar(20),
    feedback_file_ref        varchar,
    message                  varchar,
    file_type                varchar,
    ack_file_ref             varchar,
    CONSTRAINT ejv_files_pkey PRIMARY KEY (id),
    CONSTRAINT ejv_files_disbursement_status_code_fk FOREIGN KEY (disbursement_status_code) REFERENCES disbursement_status_codes(code)
);
ALTER SEQUENCE ejv_files_id_seq OWNED BY ejv_files.id;
CREATE INDEX ix_ejv_files_file_ref ON ejv_files (file_ref);

CREATE SEQUENCE ejv_headers_id_seq AS integer;
CREATE TABLE ejv_headers (
    id                       integer     NOT NULL DEFAULT nextval('ejv_headers_id_seq'::regclass),
    disbursement_status_code varchar(20),
    ejv_file_id              integer     NOT NULL,
    partner_code             varchar(10),
    payment_account_id       integer,
    message                  varchar,
    CONSTRAINT ejv_headers_pkey PRIMARY KEY (id),
    CONSTRAINT ejv_headers_disbursement_status_code_fkey FOREIGN KEY (disbursement_status_code) REFERENCES disbursement_status_codes(code),
    CONSTRAINT ejv_headers_ejv_file_id_fkey FOREIGN KEY (ejv_file_id) REFERENCES ejv_files(id),
    CONSTRAINT ejv_headers_partner_code_fkey FOREIGN KEY (partner_code) REFERENCES corp_types(code),
    CONSTRAINT ejv_headers_payment_account_id_fkey FOREIGN KEY (payment_account_id) REFERENCES payment_accounts(id)
);
ALTER SEQUENCE ejv_headers_id_seq OWNED BY ejv_headers.id;

-- renamed from ejv_invoice_links; the sequence and primary key kept the old name
CREATE SEQUENCE ejv_invoice_links_id_seq AS integer;
CREATE TABLE ejv_links (
    id                       integer     NOT NULL DEFAULT nextval('ejv_invoice_links_id_seq'::regclass),
    link_id                  integer,
    ejv_header_id            integer     NOT NULL,
    disbursement_status_code varchar(20),
    message                  varchar,
    sequence                 integer,
    link_type                varchar(50),
    CONSTRAINT ejv_invoice_links_pkey PRIMARY KEY (id),
    CONSTRAINT ejv_invoice_link_disbursement_status_code_fk FOREIGN KEY (disbursement_status_code) REFERENCES disbursement_status_codes(code),
    CONSTRAINT ejv_invoice_links_ejv_header_id_fk FOREIGN KEY (ejv_header_id) REFERENCES ejv_headers(id)
);
ALTER SEQUENCE ejv_invoice_links_id_seq OWNED BY ejv_links.id;
CREATE INDEX ix_ejv_links_ejv_header_id ON ejv_links (ejv_header_id);
CREATE INDEX ix_ejv_links_link_id ON ejv_links (link_id);
CREATE INDEX ix_ejv_links_link_type ON ejv_links (link_type);

-- ---------------------------------------------------------------------------------------------
-- EFT refunds (and the short names they hang off)
-- ---------------------------------------------------------------------------------------------
CREATE SEQUENCE eft_short_names_id_seq AS integer;
CREATE TABLE eft_short_names (
    id                  integer     NOT NULL DEFAULT nextval('eft_short_names_id_seq'::regclass),
    short_name          varchar     NOT NULL,
    created_on          timestamp   NOT NULL,
    version             integer     NOT NULL DEFAULT 1,
    cas_supplier_number varchar(25),
    email               varchar(100),
    type                varchar     NOT NULL,
    is_generated        boolean     NOT NULL DEFAULT false,
    cas_supplier_site   varchar(25),
    CONSTRAINT eft_short_names_pkey PRIMARY KEY (id)
);
ALTER SEQUENCE eft_short_names_id_seq OWNED BY eft_short_names.id;
CREATE INDEX ix_eft_short_names_short_name ON eft_short_names (short_name);

CREATE SEQUENCE eft_refunds_id_seq AS integer;
CREATE TABLE eft_refunds (
    id                       integer      NOT NULL DEFAULT nextval('eft_refunds_id_seq'::regclass),
    short_name_id            integer      NOT NULL,
    refund_amount            numeric      NOT NULL,
    cas_supplier_number      varchar(25),
    created_on               timestamp    NOT NULL,
    refund_email             varchar(100) NOT NULL,
    comment                  varchar      NOT NULL,
    status                   varchar(25),
    updated_by               varchar(50),
    updated_on               timestamp,
    decline_reason           varchar,
    created_by               varchar(100),
    created_name             varchar(100),
    updated_name             varchar(50),
    disbursement_status_code varchar(20),
    disbursement_date        date,
    cas_supplier_site        varchar(25),
    refund_method            varchar(25),
    cheque_status            varchar(25),
    entity_name              varchar,
    street                   varchar,
    street_additional        varchar,
    city                     varchar,
    region                   varchar,
    postal_code              varchar,
    country                  varchar,
    delivery_instructions    varchar,
    decision_by              varchar(50),
    CONSTRAINT eft_refunds_pkey PRIMARY KEY (id),
    CONSTRAINT eft_refunds_disbursement_status_code_fkey FOREIGN KEY (disbursement_status_code) REFERENCES disbursement_status_codes(code),
    CONSTRAINT eft_refunds_short_name_id_fkey FOREIGN KEY (short_name_id) REFERENCES eft_short_names(id)
);
ALTER SEQUENCE eft_refunds_id_seq OWNED BY eft_refunds.id;

-- ---------------------------------------------------------------------------------------------
-- sandbox-only bookkeeping (not part of pay-db)
-- ---------------------------------------------------------------------------------------------
CREATE SCHEMA paynb_sandbox;

-- one row per (scenario, table it touched)
CREATE TABLE paynb_sandbox.scenarios (
    name        text NOT NULL,
    description text NOT NULL,
    runbook_ref text,
    table_name  text NOT NULL,
    ids         bigint[] NOT NULL DEFAULT '{}',
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT scenarios_pkey PRIMARY KEY (name, table_name)
);

-- what the CFS sandbox server serves; present=false means CAS never got it (GET -> 404)
CREATE TABLE paynb_sandbox.cfs_invoices (
    cfs_party      text,
    cfs_account    text,
    cfs_site       text,
    invoice_number text NOT NULL,
    total          numeric NOT NULL,
    amount_due     numeric NOT NULL,
    present        boolean NOT NULL DEFAULT true,
    payment_method text,
    CONSTRAINT cfs_invoices_pkey PRIMARY KEY (invoice_number)
);

-- files the sandbox puts into its S3 bucket (settlement CSVs under ar/)
CREATE TABLE paynb_sandbox.store_objects (
    key          text NOT NULL,
    content      bytea NOT NULL,
    content_type text NOT NULL DEFAULT 'text/csv',
    CONSTRAINT store_objects_pkey PRIMARY KEY (key)
);

CREATE TABLE paynb_sandbox.meta (
    key   text NOT NULL,
    value text,
    CONSTRAINT meta_pkey PRIMARY KEY (key)
);
