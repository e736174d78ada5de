import { ApplicationFailure } from '@temporalio/common';
import type { FatalCode, RecordErrorCode } from './formats/types';

/**
 * Error codes that cross process boundaries: they are the ApplicationFailure `type`, the `code`
 * of stored row errors and the `error` field of API answers.
 */
export const ErrorCode = {
  InvalidParams: 'INVALID_PARAMS',
  ParamsTooLarge: 'PARAMS_TOO_LARGE',
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
  /** The database refused the work for a reason no retry can fix (a missing column, a missing privilege). */
  DatabaseError: 'DATABASE_ERROR',
  /** An activity kept failing with errors that might have passed, up to its bound of attempts. */
  RetriesExhausted: 'RETRIES_EXHAUSTED',
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
/** Every code: the map's, and the reading problems the file formats report on rows (src/formats/types.ts). */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode] | RecordErrorCode | FatalCode;

const knownCodes: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** A failure's type as an ErrorCode: RUN_FAILED for types that are not one (an SDK's, an unexpected error's name). */
export const asErrorCode = (type: string | null | undefined): ErrorCode => (type && knownCodes.has(type) ? (type as ErrorCode) : ErrorCode.RunFailed);

/** Errors that retrying cannot fix: Temporal must not retry them. */
export function permanentFailure(code: ErrorCode, message: string, details?: unknown): ApplicationFailure {
  return ApplicationFailure.create({ type: code, message, nonRetryable: true, details: details === undefined ? [] : [details] });
}
