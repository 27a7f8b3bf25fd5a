// `make certs`: writes a development CA and a serving certificate for 127.0.0.1/localhost
// into <repo>/certs (git-ignored). Usage: node src/certs/write-dev.ts [out-dir]

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCertificates } from './generate.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
// src/certs -> repo root (also works from dist/src/certs).
const repoRoot = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../../..' : '../..');
const outDir = path.resolve(process.argv[2] ?? path.join(repoRoot, 'certs'));

const certs = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] });
await mkdir(outDir, { recursive: true });
await writeFile(path.join(outDir, 'ca.crt'), certs.caCert, { mode: 0o644 });
await writeFile(path.join(outDir, 'tls.crt'), certs.cert, { mode: 0o644 });
await writeFile(path.join(outDir, 'tls.key'), certs.key, { mode: 0o600 });
console.log(`wrote ca.crt, tls.crt, tls.key to ${outDir} (valid until ${certs.notAfter.toISOString()})`);
