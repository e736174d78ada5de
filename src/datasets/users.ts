import { col, defineDataset } from './dataset';

export const users = defineDataset({
  name: 'users',
  table: 'users',
  description: 'Application users, keyed by email.',
  key: ['email'],
  idColumn: 'id',
  columns: {
    email: col.email({ description: 'Unique email address (stored lower-case).', aliases: ['e-mail', 'email_address', 'mail'] }),
    name: col.text({ required: true, max: 200, description: 'Display name.', aliases: ['full_name', 'fullname'] }),
    role: col.enumOf(['user', 'admin', 'moderator'], { default: 'user', description: 'Role; user when blank.' }),
    status: col.enumOf(['active', 'pending', 'inactive'], { default: 'active', description: 'Account status; active when blank.' }),
    signup_date: col.date({ description: 'Date of signup, YYYY-MM-DD.', aliases: ['signed_up', 'signup', 'created'] }),
    last_login_at: col.timestamp({ description: 'Last sign-in time, when known.', aliases: ['last_login', 'last_seen'] }),
    deleted_at: col.timestamp({ description: 'Soft-delete time; the user is hard-deleted by cleanup 30 days later.' }),
  },
  system: { id: 'integer', created_at: 'timestamptz', updated_at: 'timestamptz' },
});
