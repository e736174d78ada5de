import { col, defineDataset } from './dataset';

export const products = defineDataset({
  name: 'products',
  table: 'products',
  description: 'Product catalogue, keyed by SKU.',
  key: ['sku'],
  idColumn: 'id',
  columns: {
    sku: col.text({ required: true, max: 64, description: 'Stock keeping unit, unique.', aliases: ['product_code', 'code'] }),
    name: col.text({ required: true, max: 300, description: 'Product name.', aliases: ['title', 'product_name'] }),
    price: col.number({ sql: 'numeric', required: true, positive: true, max: 9_999_999_999.99, description: 'Unit price, greater than 0 (numeric(12, 2)).' }),
    category: col.text({ max: 100, description: 'Category (optional).' }),
    stock: col.number({ sql: 'integer', min: 0, default: 0, description: 'Units in stock, 0 or more; 0 when blank.', aliases: ['quantity', 'qty'] }),
  },
  system: { id: 'integer', created_at: 'timestamptz', updated_at: 'timestamptz' },
});
