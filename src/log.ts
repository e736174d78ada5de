import type { Logger as TemporalLogger, LogLevel as TemporalLogLevel, LogMetadata } from '@temporalio/common';
import pino, { type Logger } from 'pino';
import type { Config } from './config';

export type { Logger };

/**
 * The process's logger: one JSON object per line (what log shippers read), or with
 * LOG_FORMAT=pretty (`npm start`) one readable line each. The API (Fastify) and the worker
 * (through the Temporal SDK) write through it, so one run's lines share its `runId`.
 */
export function createLogger(options: Config['log'], bindings: Record<string, unknown> = {}): Logger {
  const logger = pino(
    { level: options.level, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    options.format === 'pretty' ? prettyStream(process.stdout) : pino.destination(1),
  );
  return Object.keys(bindings).length ? logger.child(bindings) : logger;
}

const LEVEL_COLOURS: Record<string, number> = { trace: 90, debug: 36, info: 32, warn: 33, error: 31, fatal: 35 };

/** One log line as a person reads it: time, level, component, message, then the other fields as key=value. */
export function formatLine(line: string, colour = false): string {
  const { time, level, msg, component, err, pid: _pid, hostname: _hostname, ...fields } = JSON.parse(line) as {
    time?: string;
    level: string;
    msg?: string;
    component?: string;
    err?: { stack?: string };
    [field: string]: unknown;
  };
  const label = level.toUpperCase().padEnd(5);
  const tail = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const stack = err?.stack;
  return [time?.slice(11, 23) ?? '', colour ? `\x1b[${LEVEL_COLOURS[level] ?? 0}m${label}\x1b[0m` : label, component ? `[${component}]` : '', msg ?? '', tail]
    .filter(Boolean)
    .join(' ')
    .concat(stack ? `\n${stack}` : '', '\n');
}

function prettyStream(out: NodeJS.WriteStream) {
  const colour = out.isTTY;
  return { write: (line: string) => out.write(formatLine(line, colour)) };
}

const PINO_LEVEL = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' } as const;

/**
 * The Temporal SDK's log attributes in Batchflow's words: a run's id is its workflow id; Temporal's
 * own run id (one per execution of a continue-as-new chain) becomes `temporalRunId`.
 */
function renameIds(meta: LogMetadata = {}): Record<string, unknown> {
  const { workflowId, runId, workflowRunId, taskToken: _taskToken, error, ...rest } = meta as Record<string, unknown>;
  return {
    ...rest,
    ...(workflowId !== undefined && { runId: workflowId }),
    ...((workflowRunId ?? runId) !== undefined && { temporalRunId: workflowRunId ?? runId }),
    ...(error !== undefined && { err: error }),
  };
}

/**
 * Routes the Temporal SDK's logs (worker, workflow and activity loggers) to pino. Activity lines
 * carry the attempt; workflow and activity lines the run id.
 */
export function temporalLogger(logger: Logger): TemporalLogger {
  const log = (level: TemporalLogLevel, message: string, meta?: LogMetadata) => logger[PINO_LEVEL[level]](renameIds(meta), message);
  return {
    log,
    trace: (message, meta) => log('TRACE', message, meta),
    debug: (message, meta) => log('DEBUG', message, meta),
    info: (message, meta) => log('INFO', message, meta),
    warn: (message, meta) => log('WARN', message, meta),
    error: (message, meta) => log('ERROR', message, meta),
  };
}
