import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { CliError, ExitCode } from './http';

/** A FILE argument as a source the API accepts: URIs as they are, local paths made absolute. */
export const sourceOf = (file: string) => (/^(s3|store|file):\/\//.test(file) ? file : path.resolve(file));

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
