import { ApplicationFailure } from '@temporalio/common';
import type { DatasetRegistry } from '../../datasets';
import { ErrorCode } from '../../errors';
import { inspectReportSchema, inspectRequestSchema, inspectSource, UnreadableFileError } from '../../inspect/inspect';
import type { SourceOpener } from '../../storage';
import type { App } from '../app';
import { ApiError, errorResponses } from '../errors';

/** A source the API cannot open, as the caller should read it: not found, or not allowed. */
export function sourceError(err: unknown): never {
  if (err instanceof ApplicationFailure && err.type === ErrorCode.SourceNotFound) throw new ApiError(404, ErrorCode.SourceNotFound, err.message, 'source');
  if (err instanceof ApplicationFailure && (err.type === ErrorCode.SourceNotAllowed || err.type === ErrorCode.InvalidParams)) throw new ApiError(400, err.type, err.message, 'source');
  if (err instanceof UnreadableFileError) throw new ApiError(400, ErrorCode.MalformedFile, err.message, 'source');
  throw err;
}

export function inspectRoutes(app: App, deps: { sources: SourceOpener; datasets: DatasetRegistry }): void {
  app.post(
    '/inspect',
    {
      // It reads server-side files and shows their values: what starting an import needs.
      config: { scope: 'run' },
      schema: {
        tags: ['inspect'],
        summary: 'Sample a file: detected column types, problems, and against a dataset the mapping and the columns that would fail',
        body: inspectRequestSchema,
        response: { 200: inspectReportSchema, ...errorResponses },
      },
    },
    async (request) => {
      const { dataset } = request.body;
      if (dataset !== undefined && !deps.datasets.get(dataset)) {
        throw new ApiError(400, 'INVALID_REQUEST', `dataset: "${dataset}" is not a declared dataset (${deps.datasets.names.join(', ')})`, 'dataset');
      }
      return inspectSource(deps.sources, deps.datasets, request.body).catch(sourceError);
    },
  );
}
