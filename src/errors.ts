import { ApplicationFailure } from '@temporalio/common';

/**
 * Error codes that cross process boundaries: they are the ApplicationFailure `type`, the `code`
 * of stored row errors and the `error` field of API answers.
 */
export const ErrorCode = {
  InvalidParams: 'INVALID_PARAMS',
  SourceNotFound: 'SOURCE_NOT_FOUND',
  SourceNotAllowed: 'SOURCE_NOT_ALLOWED',
  DestinationNotAllowed: 'DESTINATION_NOT_ALLOWED',
  UploadLost: 'UPLOAD_LOST',
  MalformedFile: 'MALFORMED_FILE',
  MissingColumns: 'MISSING_COLUMNS',
  ValidationFailed: 'VALIDATION_FAILED',
  DuplicateKey: 'DUPLICATE_KEY',
  AlreadyExists: 'ALREADY_EXISTS',
  TooManyErrors: 'TOO_MANY_ERRORS',
  StoppedOnError: 'STOPPED_ON_ERROR',
  RunFailed: 'RUN_FAILED',
  BatchFailed: 'BATCH_FAILED',
  NotFound: 'NOT_FOUND',
  MaxRecordsExceeded: 'MAX_RECORDS_EXCEEDED',
  PreconditionFailed: 'PRECONDITION_FAILED',
  Rejected: 'REJECTED',
  ApprovalTimeout: 'APPROVAL_TIMEOUT',
  Cancelled: 'CANCELLED',
  StepFailed: 'STEP_FAILED',
  NoEmailAddress: 'NO_EMAIL_ADDRESS',
  EmailRefused: 'EMAIL_REFUSED',
  EmailUnconfirmed: 'EMAIL_UNCONFIRMED',
  PdfFailed: 'PDF_FAILED',
  NotConfigured: 'NOT_CONFIGURED',
  /** The circuit breaker opened: too many of an upstream's recent requests failed. */
  UpstreamUnhealthy: 'UPSTREAM_UNHEALTHY',
  /** The upstream's origin is not one the worker allows (BATCHFLOW_UPSTREAM_ORIGINS). */
  UpstreamNotAllowed: 'UPSTREAM_NOT_ALLOWED',
  /** A row's request failed for good: an HTTP error, or network errors and timeouts past maxAttempts. */
  UpstreamError: 'UPSTREAM_ERROR',
  /** The upstream answered with something that is not the JSON a row needs. */
  InvalidResponse: 'INVALID_RESPONSE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Errors that retrying cannot fix: Temporal must not retry them. */
export function permanentFailure(code: ErrorCode, message: string, details?: unknown): ApplicationFailure {
  return ApplicationFailure.create({ type: code, message, nonRetryable: true, details: details === undefined ? [] : [details] });
}
