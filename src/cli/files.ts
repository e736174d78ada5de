import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { CliError, ExitCode } from './http';

/** A FILE argument as a source the API accepts: URIs as they are, local paths made absolute. */
export const sourceOf = (file: string) => (/^(s3|store|file):\/\//.test(file) ? file : path.resolve(file));

/** A JSON or YAML file (- for stdin), parsed. */
export function readDocument(file: string): unknown {
  let text: string;
  try {
    text = file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, ExitCode.Usage);
  }
  try {
    // YAML is a superset of JSON: one parser reads both.
    return YAML.parse(text);
  } catch (err) {
    throw new CliError(`${file} is not valid JSON or YAML: ${(err as Error).message}`, ExitCode.Usage);
  }
}
