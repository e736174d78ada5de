import { col, defineDataset } from './dataset';

const system = { id: 'integer', created_at: 'timestamptz', updated_at: 'timestamptz' } as const;

export const userActivity = defineDataset({
  name: 'user_activity',
  table: 'user_activity',
  description: 'What users did and when (sign-ins, posts, comments); a user active on a day counts once in daily_stats.',
  key: ['user_id', 'activity_type', 'occurred_at'],
  idColumn: 'id',
  columns: {
    user_id: col.number({ sql: 'integer', required: true, min: 1, description: 'The user (users.id).' }),
    activity_type: col.text({ required: true, max: 50, description: 'What they did: login, post, comment, …', aliases: ['type', 'event', 'action'] }),
    occurred_at: col.timestamp({ required: true, description: 'When it happened.', aliases: ['at', 'timestamp', 'time'] }),
  },
  system,
});
