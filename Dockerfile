# PulumiScale container image: the daemon on Node.js 24 with the official Pulumi CLI (which
# ships the Node.js, Python, Go and YAML language hosts). Mount your config at
# /etc/pulumiscale/pulumiscale.yaml and your Pulumi projects wherever its workDirs point.
#
#   docker build -t pulumiscale .
#   docker run -p 8080:8080 -v $PWD/pulumiscale.yaml:/etc/pulumiscale/pulumiscale.yaml pulumiscale
#
# Without a mounted config it serves the embedded demo (config/pulumiscale.yaml).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json tsconfig.web.json ./
COPY src ./src
COPY web ./web
COPY scripts/copy-web.mjs ./scripts/
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
ARG PULUMI_VERSION=3.276.0
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl tini \
 && curl -fsSL "https://get.pulumi.com/releases/sdk/pulumi-v${PULUMI_VERSION}-linux-x64.tar.gz" | tar -xz -C /opt \
 && apt-get purge -y curl && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/pulumi:$PATH \
    NODE_ENV=production \
    PULUMI_SKIP_UPDATE_CHECK=true \
    PULUMISCALE_HOST=0.0.0.0
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
COPY examples ./examples
RUN mkdir -p /etc/pulumiscale /app/.pulumiscale && cp config/pulumiscale.yaml /etc/pulumiscale/pulumiscale.yaml \
 && sed -i 's|\.\./examples/demo|/app/examples/demo|; s|\.\./\.pulumiscale|/app/.pulumiscale|g' /etc/pulumiscale/pulumiscale.yaml \
 && chown -R node:node /app/.pulumiscale /app/examples
USER node
EXPOSE 8080
STOPSIGNAL SIGTERM
# tini forwards SIGTERM to the daemon, which drains (running `pulumi up`s finish) and exits 0.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--max-semi-space-size=4", "/app/dist/cli.js"]
# The daemon listens on localhost unless told otherwise; in a container that must be 0.0.0.0.
CMD ["serve", "--config", "/etc/pulumiscale/pulumiscale.yaml", "--host", "0.0.0.0"]
