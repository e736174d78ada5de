import { col, defineDataset } from './dataset';

// The seed's short-lived rows: the cleanup job's shipped rules delete them once they expire.

const system = { id: 'integer', created_at: 'timestamptz', updated_at: 'timestamptz' } as const;
const userId = () => col.number({ sql: 'integer', required: true, min: 1, description: 'The user it belongs to (users.id).' });
const expiresAt = () => col.timestamp({ required: true, description: 'When it stops being valid.' });
const tokenHash = () => col.text({ required: true, max: 200, secret: true, description: 'Hash of the token, unique.' });

export const sessions = defineDataset({
  name: 'sessions',
  table: 'sessions',
  description: 'Sign-in sessions, keyed by token.',
  key: ['token'],
  idColumn: 'id',
  columns: {
    token: col.text({ required: true, max: 200, secret: true, description: 'Session token, unique.' }),
    user_id: userId(),
    expires_at: expiresAt(),
  },
  system,
});

export const passwordResetTokens = defineDataset({
  name: 'password_reset_tokens',
  table: 'password_reset_tokens',
  description: 'Password-reset tokens, keyed by their hash.',
  key: ['token_hash'],
  idColumn: 'id',
  columns: {
    token_hash: tokenHash(),
    user_id: userId(),
    expires_at: expiresAt(),
    used_at: col.timestamp({ description: 'When it was used, if it was.' }),
  },
  system,
});

export const verificationTokens = defineDataset({
  name: 'verification_tokens',
  table: 'verification_tokens',
  description: 'Email verification tokens, keyed by their hash.',
  key: ['token_hash'],
  idColumn: 'id',
  columns: {
    token_hash: tokenHash(),
    user_id: userId(),
    expires_at: expiresAt(),
  },
  system,
});
