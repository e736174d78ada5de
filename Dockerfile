# One image for the worker and the API: `batchflow worker` or `batchflow api`.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# No build step: bin/batchflow.js compiles the TypeScript sources itself. Dev tools (eslint, tsc) stay out of the image.
RUN npm ci --omit=dev && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY migrations ./migrations
COPY datasets ./datasets
COPY config ./config
COPY tsconfig.json ./
# Compiles src/ once into node_modules/.cache (bin/batchflow.js would otherwise do it at first start).
RUN node bin/batchflow.js --help > /dev/null
USER node
# A bounded old generation (as `npm start` and `npm run worker` have): on a large host V8 would let
# garbage grow to several hundred MB between collections; live heaps stay well under this.
ENTRYPOINT ["node", "--max-old-space-size=512", "bin/batchflow.js"]
CMD ["worker"]
