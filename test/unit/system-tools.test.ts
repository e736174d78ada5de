import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ensureSystemTool, pdftotext, type SystemAccess } from '../../src/stack/tools';

/** A machine where `present` are on PATH and apt-get answers with `exits` in turn (installing adds pdftotext). */
function machine(opts: { present: string[]; isRoot: boolean; exits?: number[] }) {
  const present = new Set(opts.present);
  const exits = [...(opts.exits ?? [])];
  const ran: string[] = [];
  const system: SystemAccess = {
    find: (name) => (present.has(name) ? `/usr/bin/${name}` : undefined),
    isRoot: opts.isRoot,
    run(command, args) {
      ran.push([command, ...args].join(' '));
      const code = exits.shift() ?? 0;
      if (code === 0 && args[0] === 'install') present.add('pdftotext');
      return Promise.resolve(code);
    },
  };
  const logged: string[] = [];
  return { system, ran, logged, log: (m: string) => logged.push(m) };
}

describe('npm test ensures pdftotext as the stack ensures its tools', () => {
  it('uses pdftotext on PATH and installs nothing', async () => {
    const m = machine({ present: ['pdftotext', 'apt-get'], isRoot: true });
    assert.equal(await ensureSystemTool(pdftotext, m.log, m.system), '/usr/bin/pdftotext');
    assert.deepEqual(m.ran, []);
  });

  it('as root with apt-get, installs poppler-utils, saying so', async () => {
    const m = machine({ present: ['apt-get'], isRoot: true });
    assert.equal(await ensureSystemTool(pdftotext, m.log, m.system), '/usr/bin/pdftotext');
    assert.deepEqual(m.ran, ['/usr/bin/apt-get install -y --no-install-recommends poppler-utils']);
    assert.match(m.logged.join('\n'), /installing poppler-utils[\s\S]*installed poppler-utils/);
  });

  it('runs apt-get update when the first install fails, then installs again', async () => {
    const m = machine({ present: ['apt-get'], isRoot: true, exits: [100, 0, 0] });
    await ensureSystemTool(pdftotext, m.log, m.system);
    assert.deepEqual(m.ran, ['/usr/bin/apt-get install -y --no-install-recommends poppler-utils', '/usr/bin/apt-get update', '/usr/bin/apt-get install -y --no-install-recommends poppler-utils']);
  });

  it('fails early, naming the package, when it may not install it or apt-get cannot', async () => {
    for (const m of [machine({ present: ['apt-get'], isRoot: false }), machine({ present: [], isRoot: true }), machine({ present: ['apt-get'], isRoot: true, exits: [100, 100] })]) {
      await assert.rejects(ensureSystemTool(pdftotext, m.log, m.system), /pdftotext is not on PATH.*install the poppler-utils package/);
    }
  });
});
