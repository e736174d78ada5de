import { spawn } from 'node:child_process';

/**
 * The text of a PDF as poppler's `pdftotext -layout` reads it. The tests need poppler-utils
 * (Debian and Ubuntu: apt-get install -y poppler-utils; macOS: brew install poppler).
 */
export function pdfText(pdf: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('pdftotext', ['-layout', '-enc', 'UTF-8', '-', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'ENOENT' ? new Error('pdftotext is not installed: the invoice PDF tests need poppler-utils (apt-get install -y poppler-utils)') : e),
    );
    child.once('close', (code) => (code === 0 ? resolve(Buffer.concat(out).toString('utf8')) : reject(new Error(`pdftotext failed (${code}): ${Buffer.concat(err).toString()}`))));
    child.stdin.end(pdf);
  });
}
