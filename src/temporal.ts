import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from './config';
import { asErrorCode } from './errors';
import type { Failure, RunResult } from './jobs/run';

/** One Temporal connection per process; close it on shutdown. */
export async function connectTemporal(config: Config): Promise<{ client: Client; close(): Promise<void> }> {
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  return { client, close: () => connection.close() };
}

/** Why a failed run failed: its error code and message, and the result it carried with them. */
export async function runFailure(handle: WorkflowHandle): Promise<{ error: Failure; result?: RunResult }> {
  const failure = await handle.result().then(
    () => undefined,
    (err: unknown) => (err instanceof WorkflowFailedError ? err.cause : undefined),
  );
  const result = failure instanceof ApplicationFailure ? (failure.details?.[0] as RunResult | undefined) : undefined;
  return { error: { code: asErrorCode(failure instanceof ApplicationFailure ? failure.type : undefined), message: failure?.message ?? 'the run failed' }, result };
}
