import { defineCacheDataset } from './cache';
import { col } from './dataset';

/** The seed's product cache: product data another team's API owns, refreshed hourly. */
export const productCache = defineCacheDataset({
  name: 'product_cache',
  table: 'product_cache',
  description: 'Products as an upstream API last described them, keyed by its product id.',
  key: 'product_id',
  columns: {
    product_id: col.text({ required: true, max: 200, description: 'The upstream product id, unique.', aliases: ['id', 'productId'] }),
    name: col.text({ required: true, max: 300, description: 'Product name.', aliases: ['title', 'product_name'] }),
    price: col.number({ sql: 'numeric', required: true, min: 0, max: 9_999_999_999.99, description: 'Unit price, 0 or more (numeric(12, 2)).' }),
    currency: col.currency({ required: true, description: 'ISO 4217 currency code of the price, such as EUR.' }),
  },
});
