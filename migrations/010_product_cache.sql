-- The product cache: products as an upstream API last described them (src/datasets/product-cache.ts).
-- A cache table's shape (defineCacheDataset): id, the upstream's key, the cached columns, and the
-- refresh's bookkeeping. A row may be registered by its key alone and wait for its first refresh
-- (last_status 'pending', last_updated NULL): the cached columns may be empty until a refresh
-- finds the record, and are complete whenever last_status is 'ok'.
CREATE TABLE product_cache (
  id           bigserial PRIMARY KEY,
  product_id   text NOT NULL UNIQUE,
  name         text,
  price        numeric(12, 2) CHECK (price >= 0),
  currency     text CHECK (currency ~ '^[A-Z]{3}$'),
  last_updated timestamptz,
  last_status  text NOT NULL DEFAULT 'pending' CHECK (last_status IN ('pending', 'ok', 'not_found', 'error')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CHECK (last_status <> 'ok' OR (name IS NOT NULL AND price IS NOT NULL AND currency IS NOT NULL))
);
