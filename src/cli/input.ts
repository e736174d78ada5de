import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { CliError, ExitCode, type ApiClient } from './http';

/**
 * A FILE argument as a source the API accepts: s3://, store:// and file:// as they are; a local
 * file uploaded through the API (so that the API may be on another machine) and given by its
 * store:// source; with `serverPath`, a path the worker reads where it is.
 */
export async function sourceOf(api: ApiClient, file: string, serverPath = false): Promise<string> {
  if (/^(s3|store|file):\/\//.test(file)) return file;
  if (serverPath) return path.resolve(file);
  const uploaded = await api.upload(file);
  console.error(`uploaded ${file} (${uploaded.bytes.toLocaleString('en-US')} bytes, sha256 ${uploaded.sha256}) as ${uploaded.source}`);
  return uploaded.source;
}

/** A JSON or YAML file the user names on the command line (`-` for stdin), parsed. */
export function readStructuredFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, ExitCode.Usage);
  }
  try {
    // YAML is a superset of JSON: one parser reads both.
    return YAML.parse(text) as unknown;
  } catch (err) {
    throw new CliError(`${file} is not valid JSON or YAML: ${(err as Error).message}`, ExitCode.Usage);
  }
}
