// Investigation routes (API.md §6): thin handlers over the investigations service.
import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Config } from '../../config.js';
import { callerId } from '../../plugins/auth.js';
import { pipeSse } from '../../plugins/sse.js';
import { readCsvUpload } from './csv-upload.js';
import { publicStatus } from './investigations.public.js';
import { publicInvestigationRoutes } from './investigations.public.routes.js';
import {
  createBodySchema,
  createdResponseSchema,
  createQuerySchema,
  eventStreamSchema,
  idParamsSchema,
  listQuerySchema,
  resultsResponseSchema,
  statusBody,
  statusResponseSchema,
  streamQuerySchema,
} from './investigations.schemas.js';
import type { InvestigationService } from './investigations.service.js';

export interface InvestigationRoutesOptions {
  service: InvestigationService;
  config: Pick<Config, 'INVESTIGATION_MAX_CONTRACTS' | 'SSE_HEARTBEAT_MS'>;
}

// A contract is a few hundred bytes of JSON; 1 KiB each leaves room for long descriptions.
const BYTES_PER_CONTRACT = 1024;

const lastEventIdHeaders = z.looseObject({ 'last-event-id': z.string().max(64).optional() });

export const investigationRoutes: FastifyPluginAsyncZod<InvestigationRoutesOptions> = async (app, opts) => {
  const { service } = opts;
  const max = opts.config.INVESTIGATION_MAX_CONTRACTS;
  const bodyLimit = 1024 * 1024 + max * BYTES_PER_CONTRACT;

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
  await app.register(publicInvestigationRoutes, { service, bodySchema, bodyLimit });

  app.post(
    '/',
    {
      bodyLimit,
      config: { rateLimitClass: 'investigations' },
      schema: {
        operationId: 'createInvestigation',
        body: bodySchema,
        querystring: createQuerySchema,
        response: { 202: createdResponseSchema },
      },
    },
    async (request, reply) => {
      const { body, query } = request;
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
    {
      config: { rateLimitClass: 'read' },
      schema: {
        operationId: 'listInvestigations',
        querystring: listQuerySchema,
        response: { 200: z.array(statusResponseSchema) },
      },
    },
    async (request) => {
      // The frontend's pages read this list as [InvestigationStatus] (§6.1): its fields over the native ones.
      const rows = await service.listRows(callerId(request), request.query.limit);
      return rows.map((row) => ({ ...statusBody(row), ...publicStatus(row), phase: row.currentPhase }));
    },
  );

  app.get(
    '/:id',
    {
      config: { rateLimitClass: 'read' },
      schema: {
        operationId: 'getInvestigation',
        params: idParamsSchema,
        response: { 200: statusResponseSchema },
      },
    },
    async (request) => service.status(callerId(request), request.params.id),
  );

  app.get(
    '/:id/results',
    {
      config: { rateLimitClass: 'read' },
      schema: {
        operationId: 'getInvestigationResults',
        params: idParamsSchema,
        response: { 200: resultsResponseSchema },
      },
    },
    async (request) => service.results(callerId(request), request.params.id),
  );

  app.get(
    '/:id/stream',
    {
      config: { rateLimitClass: 'investigations' },
      schema: {
        operationId: 'streamInvestigation',
        params: idParamsSchema,
        querystring: streamQuerySchema,
        headers: lastEventIdHeaders,
        response: { 200: eventStreamSchema },
      },
    },
    async (request, reply) => {
      const after = request.headers['last-event-id'] || request.query.after;
      const gone = new AbortController();
      // Ownership is checked before the stream opens: an unknown id is a JSON 404, not an SSE stream.
      const frames = await service.stream(callerId(request), request.params.id, after, gone.signal);
      await pipeSse(request, reply, frames, {
        heartbeatMs: opts.config.SSE_HEARTBEAT_MS,
        onClientClose: () => gone.abort(),
      });
    },
  );

  app.delete(
    '/:id',
    {
      config: { rateLimitClass: 'read' },
      schema: {
        operationId: 'cancelInvestigation',
        params: idParamsSchema,
        response: { 200: statusResponseSchema },
      },
    },
    async (request) => service.cancel(callerId(request), request.params.id),
  );
};
