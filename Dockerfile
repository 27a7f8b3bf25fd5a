# syntax=docker/dockerfile:1
# Build stage: dev dependencies and the TypeScript compiler.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

# Runtime stage: production dependencies only, non-root, read-only root filesystem friendly.
FROM node:24-bookworm-slim
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
