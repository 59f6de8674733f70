# syntax=docker/dockerfile:1
# jcds-fleet images. The runtime image holds dist/, the `tsc` build of producer/, shared/
# and worker/ (scripts/build.js), not the TypeScript sources: no type stripping at start,
# so processes start faster and each worker is lighter. The simulator runs its sources.
#
#   target runtime    (default) the worker, the monitor and the `jcds` command line;
#                     production dependencies only
#   target simulator  the Jamf Pro + JCDS simulator (a test double: never in production)
#
#   docker build -t jcds-fleet .                       # runtime
#   docker build -t jcds-fleet-sim --target simulator .

ARG NODE_IMAGE=node:24-slim

# package.json's optionalDependencies node-linux-* are the Node binary that npm scripts use
# on machines whose own Node is too old; the image has its own Node, so they are removed.
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/node-linux-* node_modules/.bin/node

FROM ${NODE_IMAGE} AS all-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/node-linux-* node_modules/.bin/node

# dist/ (tsc needs the dev dependencies; only dist/ goes on).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY --from=all-deps /app/node_modules ./node_modules
COPY package.json tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY scripts/build.js ./scripts/build.js
COPY shared ./shared
COPY producer ./producer
COPY worker ./worker
RUN node scripts/build.js

FROM ${NODE_IMAGE} AS simulator
ENV NODE_ENV=production
WORKDIR /app
COPY --from=all-deps /app/node_modules ./node_modules
COPY package.json ./
COPY shared ./shared
COPY test/sim ./test/sim
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 9000 9001
CMD ["node", "test/sim/main.ts", "--port", "9000", "--s3-port", "9001", "--data-dir", "/data"]

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY package.json ./
# bin/jcds.js runs dist/ (there are no sources here to be fresher than it).
COPY bin ./bin
COPY --from=build /app/dist ./dist
RUN mkdir -p /packages && chown node:node /packages
USER node
# The worker by default; the monitor and the CLI override the command (docker-compose.yml).
# V8 heap flags: see shared/worker-flags.ts
CMD ["node", "--max-semi-space-size=4", "--max-old-space-size=128", "dist/worker/main.js"]
