# syntax=docker/dockerfile:1
# Build stage: compile TypeScript with dev dependencies.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies and compiled JS only; no tsx, no compiler.
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
RUN mkdir -p /app/.data && chown -R node:node /app/.data
USER node
EXPOSE 3000
# tini is PID 1: it forwards SIGTERM to node and reaps zombies. railway.json sets no
# startCommand on purpose: Railway's startCommand replaces this ENTRYPOINT, and tini with it.
# Without DATABASE_URL this image refuses to start (NODE_ENV=production) unless EMBEDDED=true.
ENTRYPOINT ["/usr/bin/tini", "--"]
# --max-semi-space-size=16: V8's young generation as Node 20 sized it. Node 24 sizes it from the
# memory limit (64 MiB semi-spaces on a 4 GiB heap), which held 10k live replies at 627 MB RSS
# instead of 456-509 and an idle server at 235 MB instead of 153-161 (bench/RESULTS.md, seventh
# session); CPU per chat turn did not measurably change. `npm start` and `npm run bench` use the
# same flags (bench/targets.ts reads them from this line).
CMD ["node", "--max-semi-space-size=16", "dist/src/server.js"]
