import { defineRollup } from './rollup';

/**
 * The seed's daily_stats, as of each date: counts reflect the rows as they stood at the end of
 * that day (UTC), so computing a past date later, or again, gives the same figures.
 */
export const dailyStats = defineRollup({
  name: 'daily_stats',
  table: 'daily_stats',
  dateColumn: 'date',
  timeZone: 'UTC',
  description: 'Per day: total users, new signups, active users and posts.',
  measures: {
    total_users: { dataset: 'users', at: 'created_at', deletedAt: 'deleted_at', window: 'to_date', description: 'Users created by the end of the day and not deleted by then.' },
    new_signups: { dataset: 'users', at: 'created_at', deletedAt: 'deleted_at', window: 'day', description: 'Users created that day and not deleted by its end.' },
    active_users: { dataset: 'user_activity', at: 'occurred_at', distinct: 'user_id', window: 'day', description: 'Distinct users with any activity that day.' },
    posts: { dataset: 'posts', at: 'posted_at', deletedAt: 'deleted_at', window: 'day', description: 'Posts posted that day and not deleted by its end.' },
  },
});
