import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { stringify } from 'csv-stringify/sync';
import type { Dataset, DatasetRegistry } from '../datasets';
import { compileNormalisers } from '../datasets/normalise';
import { similarity } from '../datasets/similarity';
import { dedupeQueries, type GroupMember, type Link } from '../db/dedupe';
import { inTransaction, type Pool } from '../db/pool';
import { runState } from '../db/queries';
import { rowQueries, sortedDistinct, type RowSelection } from '../db/row-queries';
import { ErrorCode, permanentFailure } from '../errors';
import { mediaTypes } from '../formats/types';
import { keysetStart, type Checkpoint, type KeysetPosition } from '../jobs/checkpoint';
import { checkDedupeParams, type BlockPart, type DedupeParams } from '../jobs/dedupe';
import { downloadPath, type RunOutput, type RunPlan, type RunRef } from '../jobs/run';
import type { ObjectStore } from '../storage';
import { runSlice, type Batch } from './batch-runner';
import { requireDataset, requireValidParams } from './params';
import { planRun, runRowSlice, type RowTarget } from './row-slices';

/**
 * dedupe: finds a dataset's exact duplicates (equal hashes of normalised fields) and near
 * duplicates (similar fields, compared only within blocks of rows that share a key), groups them,
 * writes a report of the groups to the object store, and optionally merges each group into one row.
 *
 * Phases, each checkpointed like any batch flow: index (keyset pages of the dataset → each row's
 * block keys as hashes), compare (block after block → duplicate pairs), then group (pairs →
 * groups, the row each keeps, the report), then the merge (the rows to remove, as an id list).
 * The tables between phases hold ids, hashes and scores, keyed by the run's execution; workflow
 * history holds positions and counts (the preview's sample groups are stored with the run).
 */

/** Blocks read per compare batch. */
const COMPARE_BLOCKS = 1_000;
/** More duplicate pairs than this cannot be grouped in one activity's memory: the run says so. */
const MAX_LINKS = 2_000_000;

// Each phase keeps its own checkpoint row, as a run of its own: a run moves from one checkpointed
// loop to the next. Their ids are not the run's, so the API never takes a phase for the run.
const phaseOf = (run: RunRef, phase: 'index' | 'compare'): RunRef => ({ id: `${run.id}#${phase}`, execution: `${run.execution}#${phase}` });

/** A value as duplicates are compared: the column's normalisers, then case, accents and spacing folded. */
export function comparable(value: unknown, normalise?: ReturnType<typeof compileNormalisers>): string {
  if (value === null || value === undefined) return '';
  let s = typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : value instanceof Date ? value.toISOString() : JSON.stringify(value);
  const n = normalise?.(s);
  if (typeof n === 'string') s = n;
  return s.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().replace(/\s+/g, ' ').trim();
}

/** A block key's text from a row's comparable values; undefined when a part is empty (no block). */
export function blockKey(parts: readonly BlockPart[], valueOf: (field: string) => string): string | undefined {
  const texts: string[] = [];
  for (const part of parts) {
    const p = typeof part === 'string' ? { field: part, eachWord: false } : part;
    const cut = (s: string) => (p.prefix !== undefined ? s.slice(0, p.prefix) : p.suffix !== undefined ? s.slice(-p.suffix) : s);
    const v = valueOf(p.field);
    const text = p.eachWord ? v.split(' ').map(cut).join(' ') : cut(v);
    if (text === '') return undefined;
    texts.push(text);
  }
  return texts.join('\u001f');
}

/** A text as a positive 52-bit number: blocks are ordered and stored as numbers, never as values. */
export const hash52 = (text: string) => parseInt(createHash('sha1').update(text).digest('hex').slice(0, 13), 16) + 1;

/** Mean similarity of two rows' fields; fields empty in both are left out. */
function rowSimilarity(a: readonly string[], b: readonly string[], threshold: number): number {
  // For the mean to reach the threshold no field may fall below this: past it, stop counting edits.
  const fieldFloor = Math.max(0, a.length * threshold - (a.length - 1));
  let sum = 0;
  let counted = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '' && b[i] === '') continue;
    sum += a[i] === '' || b[i] === '' ? 0 : similarity(a[i]!, b[i]!, fieldFloor);
    counted += 1;
  }
  return counted === 0 ? 0 : sum / counted;
}

/**
 * The similar pairs of one block: every pair, or in a block larger than maxBlockSize, each row
 * with its `window` neighbours in the order of its values (so its cost stays linear).
 */
export function similarPairs(rows: readonly { id: number; values: readonly string[] }[], opts: { threshold: number; maxBlockSize: number; window: number }): Link[] {
  const links: Link[] = [];
  const large = rows.length > opts.maxBlockSize;
  const ordered = large ? [...rows].sort((x, y) => (x.values.join('\u001f') < y.values.join('\u001f') ? -1 : 1)) : rows;
  for (let i = 0; i < ordered.length; i++) {
    const end = large ? Math.min(ordered.length, i + 1 + opts.window) : ordered.length;
    for (let j = i + 1; j < end; j++) {
      const [x, y] = [ordered[i]!, ordered[j]!];
      const score = rowSimilarity(x.values, y.values, opts.threshold);
      if (score >= opts.threshold) links.push({ a: Math.min(x.id, y.id), b: Math.max(x.id, y.id), score: Math.round(score * 1000) / 1000, exact: false });
    }
  }
  return links;
}

/** Groups of linked rows (connected pairs), each member with its best score; in order of their lowest id. */
export function groupLinks(links: readonly Link[]): { id: number; score: number; exact: boolean }[][] {
  const parent = new Map<number, number>();
  const find = (x: number): number => {
    let root = x;
    while (parent.get(root) !== root) root = parent.get(root)!;
    for (let n = x; n !== root; ) {
      const next = parent.get(n)!;
      parent.set(n, root);
      n = next;
    }
    return root;
  };
  const best = new Map<number, { score: number; exact: boolean }>();
  for (const { a, b, score, exact } of links) {
    for (const id of [a, b]) {
      if (!parent.has(id)) parent.set(id, id);
      const seen = best.get(id);
      if (!seen || score > seen.score) best.set(id, { score, exact: exact || !!seen?.exact });
      else if (exact) seen.exact = true;
    }
    const [ra, rb] = [find(a), find(b)];
    if (ra !== rb) parent.set(Math.max(ra, rb), Math.min(ra, rb));
  }
  const groups = new Map<number, { id: number; score: number; exact: boolean }[]>();
  for (const id of [...parent.keys()].sort((x, y) => x - y)) {
    const root = find(id);
    if (!groups.has(root)) groups.set(root, []);
    groups.get(root)!.push({ id, ...best.get(id)! });
  }
  return [...groups.values()];
}

/** How the fields dedupe looks at are read from a row: each column's normalisers, compiled once. */
function readerOf(dataset: Dataset) {
  const normalisers = new Map(dataset.columnNames.map((c) => [c, compileNormalisers(dataset.columns[c]!.declaration.normalise)]));
  return (row: Record<string, unknown>) => (field: string) => comparable(row[field], normalisers.get(field));
}

interface IndexPage extends Batch<KeysetPosition> {
  keys: { pass: number[]; block: number[]; id: number[] };
  rows: number;
}

/** Pages of the dataset in id order, each row's block keys (pass 0: its exact fields; then each blockBy key). */
async function* indexPages(pool: Pool, selection: RowSelection, params: DedupeParams, from: Checkpoint<KeysetPosition>): AsyncGenerator<IndexPage> {
  const { dataset } = selection;
  const read = readerOf(dataset);
  const keyOf: ((valueOf: (f: string) => string) => string | undefined)[] = [
    (valueOf) => (params.exact ? blockKey(params.exact, valueOf) : undefined),
    ...(params.blockBy ?? []).map((parts) => (valueOf: (f: string) => string) => blockKey(parts, valueOf)),
  ];
  for (let after = from.position.lastId; ; ) {
    const rows = await rowQueries.page(pool, selection, after, params.batchSize);
    if (rows.length === 0) return;
    const keys: IndexPage['keys'] = { pass: [], block: [], id: [] };
    for (const row of rows) {
      const valueOf = read(row);
      const id = Number(row[dataset.idColumn]);
      keyOf.forEach((key, pass) => {
        const text = key(valueOf);
        if (text === undefined) return;
        keys.pass.push(pass);
        keys.block.push(hash52(text));
        keys.id.push(id);
      });
    }
    after = Number(rows.at(-1)![dataset.idColumn]);
    yield { end: { step: 0, lastId: after }, errors: [], rejectedRows: 0, keys, rows: rows.length, dataset: dataset.name };
  }
}

interface ComparePage extends Batch<KeysetPosition> {
  links: Link[];
  rows: number;
}

/** Blocks of more than one row, pass after pass; position step is the pass + 1, lastId the last block. */
async function* comparePages(pool: Pool, execution: string, dataset: Dataset, params: DedupeParams, from: Checkpoint<KeysetPosition>): AsyncGenerator<ComparePage> {
  const read = readerOf(dataset);
  const passes = (params.blockBy?.length ?? 0) + 1;
  const similar = params.similar;
  for (let step = Math.max(from.position.step, 1); step <= passes; step++) {
    const pass = step - 1;
    if (pass === 0 && !params.exact) continue;
    if (pass > 0 && !similar) break;
    for (let after = step === from.position.step ? from.position.lastId : 0; ; ) {
      const blocks = await dedupeQueries.nextBlocks(pool, execution, pass, after, COMPARE_BLOCKS);
      const last = blocks.length < COMPARE_BLOCKS;
      const rows = new Map((await dedupeQueries.rows(pool, dataset, blocks.flatMap((b) => b.ids))).map((r) => [Number(r[dataset.idColumn]), read(r)]));
      const links: Link[] = [];
      for (const { ids } of blocks) {
        const present = ids.filter((id) => rows.has(id));
        if (pass === 0) {
          // Same hash: still check the values, which a hash collision would not share.
          const byValues = new Map<string, number[]>();
          for (const id of present) {
            const v = JSON.stringify(params.exact!.map(rows.get(id)!));
            byValues.set(v, [...(byValues.get(v) ?? []), id]);
          }
          for (const same of byValues.values()) for (const id of same.slice(1)) links.push({ a: same[0]!, b: id, score: 1, exact: true });
        } else {
          links.push(...similarPairs(present.map((id) => ({ id, values: similar!.fields.map(rows.get(id)!) })), { threshold: similar!.threshold, maxBlockSize: params.maxBlockSize, window: params.window }));
        }
      }
      const end = last ? Number.MAX_SAFE_INTEGER : blocks.at(-1)!.block;
      yield { end: { step, lastId: end }, errors: [], rejectedRows: 0, links, rows: blocks.reduce((n, b) => n + b.ids.length, 0) };
      if (last) break;
      after = end;
    }
  }
}

const keepColumn = (dataset: Dataset, params: DedupeParams) => params.merge?.keep.by ?? dataset.idColumn;

/** The row each group keeps: first by the keep column in the rule's order (empty values last), then by id. */
async function chooseKept(pool: Pool, dataset: Dataset, params: DedupeParams, groups: { id: number }[][]): Promise<Set<number>> {
  const column = keepColumn(dataset, params);
  const desc = params.merge?.keep.order === 'desc';
  const values = new Map<number, unknown>();
  const ids = groups.flat().map((m) => m.id);
  for (let i = 0; i < ids.length; i += 10_000) for (const [id, v] of await dedupeQueries.keepValues(pool, dataset, column, ids.slice(i, i + 10_000))) values.set(id, v);
  const sortable = (v: unknown) => (v instanceof Date ? v.getTime() : v);
  const kept = new Set<number>();
  for (const group of groups) {
    const [first] = [...group].sort((x, y) => {
      const [a, b] = [sortable(values.get(x.id)), sortable(values.get(y.id))];
      if (a == null || b == null) return a == null && b == null ? x.id - y.id : a == null ? 1 : -1;
      if (a === b) return x.id - y.id;
      return (a < b ? -1 : 1) * (desc ? -1 : 1);
    });
    kept.add(first!.id);
  }
  return kept;
}

/** The id list of the rows a run's merge removes. */
const removalList = (run: RunRef) => createHash('sha256').update(`dedupe:${run.execution}`).digest('hex');

/** Under the run's execution too: a run id used again never overwrites the earlier run's report. */
const reportKey = (run: RunRef) => `dedupe/${run.id}/${run.execution}/duplicates.csv`;

/** Writes the report to the object store, counting and hashing its bytes on their way there. */
async function storeReport(store: ObjectStore, run: RunRef, lines: AsyncIterable<string>): Promise<RunOutput> {
  const hash = createHash('sha256');
  let bytes = 0;
  async function* measured() {
    for await (const line of lines) {
      const chunk = Buffer.from(line);
      hash.update(chunk);
      bytes += chunk.length;
      yield chunk;
    }
  }
  const { uri } = await store.put(reportKey(run), Readable.from(measured()));
  return { location: uri, contentType: mediaTypes.csv, bytes, sha256: hash.digest('hex'), download: downloadPath(run.id) };
}
const REPORT_PAGE = 1_000;

/** The report: one line per row of each group, with the values it was compared on (secret columns hidden). */
async function* reportLines(pool: Pool, dataset: Dataset, execution: string, params: DedupeParams): AsyncGenerator<string> {
  const columns = [...new Set([...(params.exact ?? []), ...(params.similar?.fields ?? [])])];
  yield stringify([['group', 'id', 'keep', 'match', 'score', ...columns]]);
  for (let after = 0; ; after += REPORT_PAGE) {
    const page = await dedupeQueries.reportPage(pool, dataset, execution, after, REPORT_PAGE, columns);
    if (page.length === 0) return;
    yield stringify(
      page.map((m) => {
        const shown = dataset.redact(m);
        return [m.group, m.id, m.keep, m.exact ? 'exact' : 'near', m.score, ...columns.map((c) => shown[c] ?? '')];
      }),
      { cast: { boolean: String, number: String, date: (d) => d.toISOString() } },
    );
  }
}

export interface DedupeSliceInput {
  run: RunRef;
  params: DedupeParams;
  asOf: string;
  cursor?: Checkpoint<KeysetPosition>;
}

export function createDedupeActivities(deps: { pool: Pool; datasets: DatasetRegistry; store: ObjectStore; sliceMs: number; parallelBatches: number }) {
  const { pool } = deps;
  const datasetOf = (params: DedupeParams) => {
    requireValidParams(checkDedupeParams(params, deps.datasets));
    return requireDataset(deps.datasets, params.dataset);
  };
  return {
    /** Reads the dataset page by page and stores each row's block keys. */
    async dedupeIndexSlice({ run, params, asOf, cursor }: DedupeSliceInput): Promise<Checkpoint<KeysetPosition>> {
      const selection: RowSelection = { dataset: datasetOf(params), where: params.where, asOf: new Date(asOf) };
      // The run's own state (its keys, pairs and groups) is kept from here on, and purged with it.
      await runState.register(pool, run);
      if (!cursor) await rowQueries.analyzeIfStale(pool, selection.dataset);
      return runSlice<KeysetPosition, IndexPage>({
        pool,
        run: phaseOf(run, 'index'),
        sliceMs: deps.sliceMs,
        policy: params,
        cursor,
        initialPosition: keysetStart,
        // Pages are disjoint id ranges: two load side by side.
        parallelBatches: deps.parallelBatches,
        batches: (from) => indexPages(pool, selection, params, from),
        async apply(client, page) {
          await dedupeQueries.insertKeys(client, run.execution, page.keys);
          return { succeeded: page.rows, skipped: 0, errors: [], rejectedRows: 0 };
        },
      });
    },

    /** Compares the rows of each block and stores the duplicate pairs. */
    async dedupeCompareSlice({ run, params, cursor }: Omit<DedupeSliceInput, 'asOf'>): Promise<Checkpoint<KeysetPosition>> {
      const dataset = datasetOf(params);
      return runSlice<KeysetPosition, ComparePage>({
        pool,
        run: phaseOf(run, 'compare'),
        sliceMs: deps.sliceMs,
        policy: params,
        cursor,
        initialPosition: keysetStart,
        // One at a time: two keys may find the same pair, and a batch that waits on another's pair
        // while that one waits to commit after it would never finish. Comparing (in the batches'
        // producer) still overlaps with the previous batch's commit.
        batches: (from) => comparePages(pool, run.execution, dataset, params, from),
        async apply(client, page) {
          await dedupeQueries.insertLinks(client, run.execution, page.links);
          return { succeeded: page.rows, skipped: 0, errors: [], rejectedRows: 0 };
        },
      });
    },

    /**
     * Groups the pairs, chooses the row each group keeps, stores the groups and the ids a merge
     * would remove, writes the report, and returns the merge's plan. Safe to retry: groups once
     * stored are read back.
     */
    async groupDuplicates({ run, params, asOf }: Omit<DedupeSliceInput, 'cursor'>): Promise<RunPlan> {
      const dataset = datasetOf(params);
      const { execution } = run;
      return planRun(pool, run, async () => {
        const warnings: string[] = [];
        if (!(await dedupeQueries.hasGroups(pool, execution))) {
          const large = params.similar ? await dedupeQueries.largeBlocks(pool, execution, params.maxBlockSize) : 0;
          if (large > 0) warnings.push(`${large} block(s) held more than maxBlockSize (${params.maxBlockSize}) rows: their rows were compared with their ${params.window} nearest neighbours only; a more selective blockBy finds more`);
          const linkCount = await dedupeQueries.countLinks(pool, execution);
          if (linkCount > MAX_LINKS) {
            throw permanentFailure(ErrorCode.TooManyErrors, `${linkCount} duplicate pairs found, more than ${MAX_LINKS} can be grouped: raise similar.threshold or make blockBy more selective`);
          }
          const groups = groupLinks(await dedupeQueries.links(pool, execution));
          const kept = await chooseKept(pool, dataset, params, groups);
          const members: GroupMember[] = groups.flatMap((group, i) => group.map((m) => ({ group: i + 1, ...m, keep: kept.has(m.id) })));
          const removals = members.filter((m) => !m.keep).map((m) => m.id);
          await inTransaction(pool, async (client) => {
            for (let i = 0; i < members.length; i += 10_000) await dedupeQueries.insertGroups(client, execution, members.slice(i, i + 10_000));
            // The merge pages through the rows to remove as bulk updates page through a stored id list.
            for (let i = 0; i < removals.length; i += 10_000) await rowQueries.storeIdList(client, removalList(run), sortedDistinct(removals.slice(i, i + 10_000)));
            // The merge uses the stored list: it must outlive the retention period as long as the run does.
            await rowQueries.referenceIdList(client, execution, removalList(run));
            await dedupeQueries.dropScratch(client, execution);
          });
        }
        const summary = await dedupeQueries.summary(pool, execution);
        const indexed = await runState.readCheckpoint<Checkpoint<KeysetPosition>>(pool, phaseOf(run, 'index').execution);
        const report = await storeReport(deps.store, run, reportLines(pool, dataset, execution, params));
        const byGroup = new Map<number, GroupMember[]>();
        for (const m of await dedupeQueries.firstGroups(pool, execution, params.sampleSize)) byGroup.set(m.group, [...(byGroup.get(m.group) ?? []), m]);
        // Ids and scores only; stored with the run, apart from workflow history, like any preview's sample.
        const sample = [...byGroup.values()].map((members) => ({
          group: members[0]!.group,
          keep: members.find((m) => m.keep)!.id,
          remove: members.filter((m) => !m.keep).map((m) => m.id),
          scores: Object.fromEntries(members.map((m) => [m.id, m.score])),
          match: members.every((m) => m.exact) ? 'exact' : 'near',
        }));
        return {
          plan: {
            asOf,
            preview: { matched: summary.removals, groups: summary.groups, scanned: indexed?.checkpoint.counts.succeeded ?? 0, duplicateRows: summary.rows },
            bounds: [summary.maxRemoval],
            outputs: [{ ...report, rows: summary.rows }],
            warnings,
          },
          samples: { sample },
        };
      });
    },

    /** Removes the rows no group keeps (filling the kept rows first when asked), batch after batch. */
    async dedupeMergeSlice({ run, params, plan, cursor }: { run: RunRef; params: DedupeParams; plan: RunPlan; cursor?: Checkpoint<KeysetPosition> }): Promise<Checkpoint<KeysetPosition>> {
      const dataset = datasetOf(params);
      const fill = params.merge?.fillEmpty ? dataset.columnNames.filter((c) => !dataset.key.includes(c)) : [];
      const target: RowTarget = { name: 'merge', selection: { dataset, asOf: new Date(plan.asOf) }, ids: { listId: removalList(run) }, upTo: plan.bounds[0]!, batchSize: params.batchSize };
      return runRowSlice({
        pool,
        run,
        sliceMs: deps.sliceMs,
        policy: params,
        cursor,
        targets: [target],
        async apply(client, batch) {
          const ids = 'ids' in batch.rows ? batch.rows.ids : [];
          const removed = await dedupeQueries.merge(client, dataset, run.execution, ids, fill);
          return { succeeded: removed, skipped: ids.length - removed, errors: [], rejectedRows: 0 };
        },
      });
    },
  };
}
