-- Invoicing (customers, usage, invoices and their lines, per-year invoice numbers) and the
-- delivery log of notifications (webhooks and emails) that every run may send.

CREATE TABLE customers (
  id            bigserial PRIMARY KEY,
  external_id   text NOT NULL UNIQUE,
  name          text NOT NULL,
  -- Nullable: a customer without an address still gets an invoice, and a row error instead of an email.
  email         text,
  currency      text NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$'),
  address_line1 text,
  address_line2 text,
  postal_code   text,
  city          text,
  country       text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- No foreign key to customers: an import of usage for a customer not loaded yet must not be
-- refused as a whole batch. Invoicing reports usage whose customer does not exist.
CREATE TABLE usage_events (
  id          bigserial PRIMARY KEY,
  event_id    text NOT NULL UNIQUE,
  customer    text NOT NULL,
  metric      text NOT NULL,
  quantity    numeric(20, 6) NOT NULL CHECK (quantity >= 0),
  unit_price  numeric(20, 6) NOT NULL CHECK (unit_price >= 0),
  occurred_at timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Usage of a customer in a month: the invoicing run's aggregate reads exactly this range.
CREATE INDEX usage_events_customer_occurred_at_idx ON usage_events (customer, occurred_at);

-- One invoice per customer and month, whatever reruns and crashes happen (the unique key is the
-- idempotency). A draft has amounts but no number; issuing gives it the next number of its year.
-- Money is in integer minor units of the invoice's currency (cents; yen).
CREATE TABLE invoices (
  id               bigserial PRIMARY KEY,
  customer_id      bigint NOT NULL REFERENCES customers (id),
  period           text NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
  number           text UNIQUE,
  status           text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'issued', 'sent', 'failed')),
  currency         text NOT NULL,
  tax_rate         numeric(9, 6) NOT NULL,
  subtotal_minor   bigint NOT NULL,
  tax_minor        bigint NOT NULL,
  total_minor      bigint NOT NULL,
  issue_date       date,
  due_date         date,
  -- Who was billed and by whom, frozen when issued: the PDF of an invoice never changes.
  bill_to          jsonb,
  seller           jsonb,
  pdf_key          text,
  pdf_size         integer,
  pdf_sha256       text,
  -- Email delivery: pending → sending (committed before the SMTP call) → sent, or failed.
  email_state      text NOT NULL DEFAULT 'pending' CHECK (email_state IN ('pending', 'sending', 'sent', 'failed')),
  email_attempts   integer NOT NULL DEFAULT 0,
  email_to         text,
  email_message_id text,
  email_error      text,
  -- The run that last touched each stage, so that a resumed run counts its own work as done.
  computed_at      timestamptz NOT NULL DEFAULT now(),
  issued_at        timestamptz,
  rendered_at      timestamptz,
  sent_at          timestamptz,
  issued_by_run    text,
  rendered_by_run  text,
  sent_by_run      text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (customer_id, period),
  CHECK ((number IS NULL) = (status = 'draft'))
);
CREATE INDEX invoices_period_idx ON invoices (period, customer_id);

CREATE TABLE invoice_lines (
  id           bigserial PRIMARY KEY,
  invoice_id   bigint NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
  line_no      integer NOT NULL,
  metric       text NOT NULL,
  quantity     numeric(26, 6) NOT NULL,
  unit_price   numeric(20, 6) NOT NULL,
  amount_minor bigint NOT NULL,
  events       integer NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (invoice_id, line_no)
);

-- The last number given out per year. Issuing locks its year's row in the transaction that
-- creates the invoices, so numbers are consecutive: a rolled-back issue gives its numbers back.
CREATE TABLE invoice_counters (
  year        integer PRIMARY KEY,
  last_number integer NOT NULL
);

-- Every notification a run sends (its end, invoice events), one row per event and target, with
-- its attempts. Rows are written in the transaction that causes the event (an outbox), so an event
-- is recorded exactly once; the row's id is the webhook-id receivers deduplicate by.
CREATE TABLE notification_deliveries (
  seq           bigserial PRIMARY KEY,
  id            text NOT NULL UNIQUE,
  run_id        text NOT NULL,
  channel       text NOT NULL CHECK (channel IN ('webhook', 'email')),
  target        text NOT NULL,
  event         text NOT NULL,
  -- What the event is about (an invoice id), so that it is emitted once whatever the reruns.
  subject       text NOT NULL,
  payload       jsonb NOT NULL,
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts      integer NOT NULL DEFAULT 0,
  attempt_log   jsonb NOT NULL DEFAULT '[]',
  created_at    timestamptz NOT NULL DEFAULT now(),
  delivered_at  timestamptz,
  UNIQUE (event, subject, channel, target)
);
CREATE INDEX notification_deliveries_run_idx ON notification_deliveries (run_id, seq);
CREATE INDEX notification_deliveries_pending_idx ON notification_deliveries (run_id) WHERE status = 'pending';
