/**
 * Reads what reached the test stack's Mailpit (scripts/test.ts sets MAILPIT_API_URL) through its
 * HTTP API. Tests use their own recipient addresses, so they only ever look at their own mail.
 */

export interface MailSummary {
  ID: string;
  MessageID: string;
  Subject: string;
  To: { Address: string }[];
  Attachments: number;
}

export interface MailMessage extends Omit<MailSummary, 'Attachments'> {
  Text: string;
  Attachments: { PartID: string; FileName: string; ContentType: string; Size: number }[];
}

const api = () => {
  const url = process.env.MAILPIT_API_URL;
  if (!url) throw new Error('MAILPIT_API_URL is not set: run the tests through `npm test`, which starts Mailpit');
  return url;
};

async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(`${api()}${path}`);
  if (!res.ok) throw new Error(`Mailpit GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** Every message whose recipients match `query` (Mailpit search syntax, such as `to:"a@example.com"`). */
export async function searchMail(query: string): Promise<MailSummary[]> {
  const out: MailSummary[] = [];
  for (let start = 0; ; ) {
    const page = await getJson<{ messages: MailSummary[]; messages_count: number }>(`/api/v1/search?query=${encodeURIComponent(query)}&start=${start}&limit=500`);
    out.push(...page.messages);
    start += page.messages.length;
    if (page.messages.length === 0 || start >= page.messages_count) return out;
  }
}

/** Messages sent to one address. */
export const mailTo = (address: string) => searchMail(`to:"${address}"`);

/** A message with its text and attachment list. */
export const readMail = (id: string) => getJson<MailMessage>(`/api/v1/message/${id}`);

/** The bytes of one attachment. */
export async function mailAttachment(id: string, partId: string): Promise<Buffer> {
  const res = await fetch(`${api()}/api/v1/message/${id}/part/${partId}`);
  if (!res.ok) throw new Error(`Mailpit attachment ${id}/${partId}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

/** Waits until `query` finds at least `count` messages (SMTP accepted them; indexing may lag a little). */
export async function waitForMail(query: string, count: number, timeoutMs = 30_000): Promise<MailSummary[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await searchMail(query);
    if (found.length >= count || Date.now() > deadline) return found;
    await new Promise((r) => setTimeout(r, 200));
  }
}
