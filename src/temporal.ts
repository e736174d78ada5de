import { Client, Connection } from '@temporalio/client';
import type { Config } from './config';

/** One Temporal connection per process; close it on shutdown. */
export async function connectTemporal(config: Config): Promise<{ client: Client; close(): Promise<void> }> {
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  return { client, close: () => connection.close() };
}
