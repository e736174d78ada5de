import { loadConfig } from '../config';
import { follow } from './follow';
import { ApiClient, ExitCode } from './http';
import { readLocalKey } from './local-key';

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * The API at BATCHFLOW_API_URL, with BATCHFLOW_API_KEY; without one, the key `npm start` keeps in
 * the data directory, but only for an API on this machine (that key is sent nowhere else).
 */
export function apiClient(): ApiClient {
  const config = loadConfig();
  const local = LOCAL_HOSTS.has(new URL(config.api.url).hostname);
  return new ApiClient(config.api.url, config.api.key ?? (local ? readLocalKey(config.localKeyFile) : undefined));
}

/** Starts a run through the API and follows it unless told not to wait. */
export async function startAndFollow(kind: string, params: unknown, runId: string | undefined, wait: boolean): Promise<number> {
  const client = apiClient();
  const { body } = await client.request<{ runId: string; existing: boolean }>('POST', '/runs', { kind, params, runId });
  console.error(`${body.existing ? 'existing' : 'started'} run ${body.runId}`);
  if (!wait) {
    console.log(body.runId);
    return ExitCode.Success;
  }
  return follow(client, body.runId);
}
