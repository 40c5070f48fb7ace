// Investigation routes (API.md §6): thin handlers over the investigations service.
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../../config.js';
import { callerId } from '../../plugins/auth.js';
import { readCsvUpload } from './csv-upload.js';
import { publicStatus } from './investigations.public.js';
import { publicInvestigationRoutes } from './investigations.public.routes.js';
import {
  createBodySchema,
  createQuerySchema,
  idParamsSchema,
  listQuerySchema,
  statusBody,
  streamQuerySchema,
} from './investigations.schemas.js';
import type { InvestigationService } from './investigations.service.js';

export interface InvestigationRoutesOptions {
  service: InvestigationService;
  config: Pick<Config, 'INVESTIGATION_MAX_CONTRACTS'>;
  /** Per-route rate-limit settings by class (plugins/rate-limit.ts); none when absent. */
  rateLimit?: (cls: 'investigations' | 'read' | 'poll') => Record<string, unknown>;
}

// A contract is a few hundred bytes of JSON; 1 KiB each leaves room for long descriptions.
const BYTES_PER_CONTRACT = 1024;

export async function investigationRoutes(app: FastifyInstance, opts: InvestigationRoutesOptions) {
  const { service } = opts;
  const max = opts.config.INVESTIGATION_MAX_CONTRACTS;
  const bodyLimit = 1024 * 1024 + max * BYTES_PER_CONTRACT;
  const limit = (cls: 'investigations' | 'read' | 'poll'): Record<string, unknown> => {
    const settings = opts.rateLimit?.(cls);
    return settings ? { rateLimit: settings } : {};
  };

  // Scoped to these routes: a CSV upload is streamed, decoded by its charset and checked into `{ csv }`.
  app.addContentTypeParser(
    ['text/csv', 'application/csv'],
    { bodyLimit },
    async (req: FastifyRequest, payload: Readable) => ({
      csv: await readCsvUpload(payload, req.headers['content-type'], {
        maxContracts: max,
        maxBytes: bodyLimit,
      }),
    }),
  );

  const bodySchema = createBodySchema(max);
  // The frontend's pages (API.md §6.1), registered before `/:id` so `public` is never taken for an id.
  await app.register(publicInvestigationRoutes, { service, bodySchema, bodyLimit, limit });

  app.post(
    '/',
    {
      bodyLimit,
      config: limit('investigations'),
      schema: { operationId: 'createInvestigation', body: bodySchema, querystring: createQuerySchema },
    },
    async (request, reply) => {
      const body = request.body as ReturnType<typeof bodySchema.parse>;
      const query = request.query as ReturnType<typeof createQuerySchema.parse>;
      const created = await service.create(callerId(request), {
        ...body,
        query: body.query ?? query.query,
        anomaly_types: body.anomaly_types ?? query.anomaly_types,
      });
      return reply.code(202).send(created);
    },
  );

  app.get(
    '/',
    { config: limit('read'), schema: { operationId: 'listInvestigations', querystring: listQuerySchema } },
    async (request) => {
      const { limit } = request.query as ReturnType<typeof listQuerySchema.parse>;
      // The frontend's pages read this list as [InvestigationStatus] (§6.1): its fields over the native ones.
      const rows = await service.listRows(callerId(request), limit);
      return rows.map((row) => ({ ...statusBody(row), ...publicStatus(row), phase: row.currentPhase }));
    },
  );

  app.get(
    '/:id',
    { config: limit('read'), schema: { operationId: 'getInvestigation', params: idParamsSchema } },
    async (request) => {
      const { id } = request.params as ReturnType<typeof idParamsSchema.parse>;
      return service.status(callerId(request), id);
    },
  );

  app.get(
    '/:id/results',
    { config: limit('read'), schema: { operationId: 'getInvestigationResults', params: idParamsSchema } },
    async (request) => {
      const { id } = request.params as ReturnType<typeof idParamsSchema.parse>;
      return service.results(callerId(request), id);
    },
  );

  app.get(
    '/:id/stream',
    {
      config: limit('investigations'),
      schema: { operationId: 'streamInvestigation', params: idParamsSchema, querystring: streamQuerySchema },
    },
    async (request, reply) => {
      const { id } = request.params as ReturnType<typeof idParamsSchema.parse>;
      const { after } = request.query as ReturnType<typeof streamQuerySchema.parse>;
      const header = request.headers['last-event-id'];
      await service.stream(
        callerId(request),
        id,
        request,
        reply,
        (typeof header === 'string' && header) || after,
      );
    },
  );

  app.delete(
    '/:id',
    { config: limit('read'), schema: { operationId: 'cancelInvestigation', params: idParamsSchema } },
    async (request) => {
      const { id } = request.params as ReturnType<typeof idParamsSchema.parse>;
      return service.cancel(callerId(request), id);
    },
  );
}
