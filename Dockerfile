# syntax=docker/dockerfile:1
# The base of both stages: Node 24 with npm on Debian bookworm. Override it with
# --build-arg BASE_IMAGE=... (a mirror, a pinned digest, or the local stand-in that
# `npm run image` builds from Debian packages: test/image/base.sh).
ARG BASE_IMAGE=node:24-bookworm-slim

# Build stage: dev dependencies and the TypeScript compiler.
FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the only install script is the `node` devDependency's, which downloads a
# second Node runtime that tsc does not need (the base image's Node runs it).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

# Runtime stage: production dependencies only, non-root, read-only root filesystem friendly.
FROM ${BASE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev also leaves out the `node` runtime package: the base image's Node 24 runs it.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist/src ./dist/src
USER 65532:65532
EXPOSE 8443 9090
# V8 flags: src/server/node-flags.ts (why, and what they cost, is measured there and in bench:scale).
ENTRYPOINT ["node", "--max-semi-space-size=8", "/app/dist/src/cli/main.js"]
CMD ["serve", "--cert-dir", "/certs"]
