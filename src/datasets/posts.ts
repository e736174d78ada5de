import { col, defineDataset } from './dataset';

const system = { id: 'integer', created_at: 'timestamptz', updated_at: 'timestamptz' } as const;

export const posts = defineDataset({
  name: 'posts',
  table: 'posts',
  description: "Users' posts, keyed by slug; counted per day by the daily_stats roll-up.",
  key: ['slug'],
  idColumn: 'id',
  columns: {
    slug: col.text({ required: true, max: 200, description: 'Unique post slug.', aliases: ['post_id', 'external_id'] }),
    user_id: col.number({ sql: 'integer', required: true, min: 1, description: 'The author (users.id).', aliases: ['author_id'] }),
    title: col.text({ required: true, max: 500, description: 'Title.' }),
    body: col.text({ max: 100_000, description: 'Text of the post (optional).', aliases: ['content'] }),
    posted_at: col.timestamp({ required: true, description: 'When it was posted: the day it counts for.', aliases: ['published_at', 'created'] }),
    deleted_at: col.timestamp({ description: 'Soft-delete time: from then on it no longer counts.' }),
  },
  system,
});
