import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';

const root = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');

interface Service {
  ports?: string[];
  environment?: Record<string, string>;
}
const compose = YAML.parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> };
const services = compose.services;

describe('docker-compose.yml', () => {
  it("publishes neither Temporal's frontend nor Postgres; only the API listens beyond the host", () => {
    assert.equal(services.temporal!.ports, undefined);
    assert.equal(services.postgres!.ports, undefined);
    for (const [name, service] of Object.entries(services)) {
      for (const port of service.ports ?? []) {
        if (name === 'api') continue;
        assert.match(port, /^127\.0\.0\.1:/, `${name} publishes ${port} beyond the host`);
      }
    }
    assert.deepEqual(services.api!.ports, ['3000:3000']);
  });

  it('holds no secret: passwords and keys come from .env, which git ignores and .env.example documents', () => {
    const text = read('docker-compose.yml');
    const referenced = new Set([...text.matchAll(/\$\{([A-Z_]+)(?::\?[^}]*)?\}/g)].map((m) => m[1]!));
    for (const [name, service] of Object.entries(services)) {
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        if (/PASSWORD|PWD|SECRET|ACCESS_KEY/.test(key)) assert.match(String(value), /^\$\{[A-Z_]+:\?/, `${name}.${key} is written in the file`);
        if (key === 'DATABASE_URL') assert.match(String(value), /:\$\{POSTGRES_PASSWORD:\?[^}]*\}@/, `${name}.DATABASE_URL`);
      }
    }
    const example = new Set(read('.env.example').split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split('=')[0]!));
    assert.deepEqual([...referenced].sort(), [...example].sort(), '.env.example lists every variable the file needs');
    assert.ok(read('.gitignore').split('\n').includes('.env'), '.env is not committed');
  });
});
